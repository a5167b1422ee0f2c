#pragma once
// Collectives over MPI on host memory: the CPU engine's data parallelism, and
// the channel that carries the NCCL unique id when the job was started by
// mpirun (or srun with PMIx). Built when CMake finds MPI (DUET_WITH_MPI).
#include <memory>

#include "dist/communicator.hpp"

namespace duet::dist {

class MpiCommunicator final : public Communicator {
 public:
  // Initialises MPI (with MPI_THREAD_MULTIPLE, so the watchdog thread may
  // abort) unless it already is; finalises it in the destructor.
  MpiCommunicator();
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string_view backend() const override { return "mpi"; }
  void all_reduce_sum(float* data, size_t count) override;
  void all_reduce_sum(double* data, size_t count) override;
  void reduce_scatter_sum(const float* send, float* shard, size_t count) override;
  void all_gather(float* data, size_t count) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void barrier() override;
  [[noreturn]] void abort(int code) override;

 private:
  struct State;
  std::unique_ptr<State> state_;
  int rank_ = 0, size_ = 1;
};

}  // namespace duet::dist
