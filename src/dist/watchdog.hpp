#pragma once
// A time limit on every collective (--nccl-timeout): a rank that died or
// hangs leaves the others blocked in a collective forever; this wrapper's
// thread notices one that has waited longer than the limit, prints which rank
// and which collective, and aborts the job (MPI_Abort / ncclCommAbort).
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "dist/communicator.hpp"

namespace duet::dist {

class WatchedCommunicator final : public Communicator {
 public:
  WatchedCommunicator(std::unique_ptr<Communicator> inner, double timeout_seconds);
  ~WatchedCommunicator() override;
  WatchedCommunicator(const WatchedCommunicator&) = delete;
  WatchedCommunicator& operator=(const WatchedCommunicator&) = delete;

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  std::string_view backend() const override { return inner_->backend(); }
  void all_reduce_sum(float* data, size_t count) override;
  void all_reduce_sum(double* data, size_t count) override;
  void reduce_scatter_sum(const float* send, float* shard, size_t count) override;
  void all_gather(float* data, size_t count) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void barrier() override;
  void barrier_unbounded() override { inner_->barrier_unbounded(); }  // not watched
  [[noreturn]] void abort(int code) override;
  DeviceCollectives* device() override { return inner_->device(); }  // NCCL's waits bound themselves

 private:
  class Watch;  // marks one collective in flight
  void watch_loop();

  std::unique_ptr<Communicator> inner_;
  std::chrono::duration<double> timeout_;
  std::mutex mutex_;
  std::condition_variable wake_;
  const char* in_flight_ = nullptr;  // the collective running now, or none
  std::chrono::steady_clock::time_point started_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace duet::dist
