#include "engine/cuda/op_timer.hpp"

namespace duet::engine::cuda {

using backend::cuda::check;

OpTimer::~OpTimer() {
  for (auto& i : recorded_) free_.push_back(i.start), free_.push_back(i.stop);
  for (cudaEvent_t e : free_) cudaEventDestroy(e);
}

cudaEvent_t OpTimer::event() {
  if (!free_.empty()) {
    cudaEvent_t e = free_.back();
    free_.pop_back();
    return e;
  }
  cudaEvent_t e = nullptr;
  check(cudaEventCreate(&e), "creating a timing event");
  return e;
}

OpTimer::Scope::Scope(OpTimer* timer, OpKind kind, cudaStream_t stream) : timer_(timer), stream_(stream) {
  if (!timer_) return;
  index_ = timer_->recorded_.size();
  timer_->recorded_.push_back({kind, timer_->event(), timer_->event()});
  check(cudaEventRecord(timer_->recorded_.back().start, stream_), "recording a timing event");
}

OpTimer::Scope::~Scope() {
  if (timer_) cudaEventRecord(timer_->recorded_[index_].stop, stream_);
}

void OpTimer::collect() {
  for (auto& i : recorded_) {
    float ms = 0;
    check(cudaEventElapsedTime(&ms, i.start, i.stop), "reading a timing event");
    totals_[static_cast<size_t>(i.kind)] += ms * 1e-3;
    free_.push_back(i.start), free_.push_back(i.stop);
  }
  recorded_.clear();
}

std::array<double, kOpKinds> OpTimer::take() {
  collect();
  auto out = totals_;
  totals_ = {};
  return out;
}

}  // namespace duet::engine::cuda
