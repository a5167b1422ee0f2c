#include "dist/watchdog.hpp"

#include <cstdio>
#include <cstdlib>

#include "util/error.hpp"

namespace duet::dist {

class WatchedCommunicator::Watch {
 public:
  Watch(WatchedCommunicator& owner, const char* name) : owner_(owner) {
    std::lock_guard lock(owner_.mutex_);
    owner_.in_flight_ = name;
    owner_.started_ = std::chrono::steady_clock::now();
  }
  ~Watch() {
    std::lock_guard lock(owner_.mutex_);
    owner_.in_flight_ = nullptr;
  }

 private:
  WatchedCommunicator& owner_;
};

WatchedCommunicator::WatchedCommunicator(std::unique_ptr<Communicator> inner, double timeout_seconds)
    : inner_(std::move(inner)), timeout_(timeout_seconds) {
  if (!(timeout_seconds > 0)) fail("--nccl-timeout {}: must be a positive number of seconds", timeout_seconds);
  thread_ = std::thread([this] { watch_loop(); });
}

WatchedCommunicator::~WatchedCommunicator() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void WatchedCommunicator::watch_loop() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    wake_.wait_for(lock, std::chrono::milliseconds(200));
    if (in_flight_ && std::chrono::steady_clock::now() - started_ > timeout_) {
      std::fflush(stdout);
      std::fprintf(stderr,
                   "duet: error: rank %d: %s waited more than %g s for the other ranks (--nccl-timeout): another rank "
                   "has failed or hangs; ending the job\n",
                   inner_->rank(), in_flight_, timeout_.count());
      std::fflush(stderr);
      inner_->abort(1);
    }
  }
}

void WatchedCommunicator::abort(int code) {
  inner_->abort(code);
  std::_Exit(code);  // not reached: a virtual's [[noreturn]] is not inherited
}

void WatchedCommunicator::all_reduce_sum(float* data, size_t count) {
  Watch w(*this, "all_reduce");
  inner_->all_reduce_sum(data, count);
}

void WatchedCommunicator::all_reduce_sum(double* data, size_t count) {
  Watch w(*this, "all_reduce");
  inner_->all_reduce_sum(data, count);
}

void WatchedCommunicator::reduce_scatter_sum(const float* send, float* shard, size_t count) {
  Watch w(*this, "reduce_scatter");
  inner_->reduce_scatter_sum(send, shard, count);
}

void WatchedCommunicator::all_gather(float* data, size_t count) {
  Watch w(*this, "all_gather");
  inner_->all_gather(data, count);
}

void WatchedCommunicator::broadcast(void* data, size_t bytes, int root) {
  Watch w(*this, "broadcast");
  inner_->broadcast(data, bytes, root);
}

void WatchedCommunicator::barrier() {
  Watch w(*this, "barrier");
  inner_->barrier();
}

}  // namespace duet::dist
