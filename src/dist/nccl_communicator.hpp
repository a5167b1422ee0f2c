#pragma once
// Collectives over NCCL on the GPU of this rank (the CUDA engine). The NCCL
// unique id goes from rank 0 to the others through MPI when the job was
// started by mpirun or srun (pass that communicator), else through the TCP
// exchange at MASTER_ADDR:MASTER_PORT. Each collective runs on the
// communicator's own stream and is waited for by polling, so a rank that never
// joins ends the job after `timeout_seconds` (--nccl-timeout) instead of
// hanging. Host buffers are staged through the device (the trainer's few
// numbers per step); gradients and weights should be device memory.
// Built when CMake finds nccl.h and libnccl with the CUDA backend (DUET_WITH_NCCL).
#include <memory>

#include "dist/communicator.hpp"
#include "dist/launch.hpp"

namespace duet::dist {

class NcclCommunicator final : public Communicator, public DeviceCollectives {
 public:
  // Selects GPU launch.local_rank. `id_channel`: a communicator over the same
  // ranks that carries the unique id (MPI) and lives as long as this one, or
  // null for the TCP exchange.
  NcclCommunicator(const Launch& launch, std::unique_ptr<Communicator> id_channel, double timeout_seconds);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string_view backend() const override { return "nccl"; }
  void all_reduce_sum(float* data, size_t count) override;
  void all_reduce_sum(double* data, size_t count) override;
  void reduce_scatter_sum(const float* send, float* shard, size_t count) override;
  void all_gather(float* data, size_t count) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void barrier() override;
  void barrier_unbounded() override;
  [[noreturn]] void abort(int code) override;
  DeviceCollectives* device() override { return this; }

  // DeviceCollectives: queued on the communicator's stream, one NCCL group per call.
  void* stream() override;
  void reduce_sum(std::span<const Part> parts) override;
  void broadcast(std::span<const Part> parts) override;
  void all_reduce_sum(std::span<const Part> parts) override;
  void wait(const char* what) override;

 private:
  void all_reduce(void* data, size_t count, int type, size_t element_bytes);  // type: an ncclDataType_t

  struct State;
  std::unique_ptr<State> state_;
  std::unique_ptr<Communicator> id_channel_;  // MPI stays initialised while NCCL runs
  int rank_ = 0, size_ = 1;
};

}  // namespace duet::dist
