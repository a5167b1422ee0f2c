#include "engine/cuda/reduced_gradients.hpp"

#include "backend/cuda/common.hpp"
#include "engine/gradient_buckets.hpp"
#include "util/error.hpp"

namespace duet::engine::cuda {

using backend::cuda::check;

ReducedGradients::ReducedGradients(const model::ModelConfig& config, const DeviceLayout& layout, float* grads)
    : grads_(grads), total_(layout.total) {
  const GradientBuckets buckets = gradient_buckets(config, layout, 1);
  for (const GradientBucket& b : buckets.layers) layers_.push_back(b.ranges.front());
  outer_ = buckets.outer.ranges;
  check(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming), "creating a CUDA event");
}

ReducedGradients::~ReducedGradients() {
  if (ready_) cudaEventDestroy(ready_);
}

void ReducedGradients::set_communicator(dist::Communicator& comm) { collectives_.bind(comm, "data parallelism"); }

float* ReducedGradients::at(size_t offset) {
  if (layers_summed_ || summed_)
    fail("internal: a backward after the step's last one (zero_grad first, or arm only the last backward)");
  return grads_ + offset;
}

void ReducedGradients::close_layer(int64_t l, cudaStream_t s) {
  if (!armed_) return;
  dist::DeviceCollectives* device = collectives_.device();
  if (!device) return;  // one rank: nothing to sum
  collectives_.after(s, ready_);  // the all-reduce runs on the collective stream
  const auto [begin, end] = layers_[static_cast<size_t>(l)];
  const dist::DeviceCollectives::Part part{grads_ + begin, end - begin, 0};
  device->all_reduce_sum({&part, 1});
}

void ReducedGradients::finish_backward() {
  if (!armed_) return;
  armed_ = false;
  layers_summed_ = true;
}

void ReducedGradients::finish_step(cudaStream_t s) {
  if (summed_) return;
  if (dist::DeviceCollectives* device = collectives_.device()) {
    collectives_.after(s, ready_);
    std::vector<dist::DeviceCollectives::Part> parts;
    if (layers_summed_) {
      for (const auto& [begin, end] : outer_) parts.push_back({grads_ + begin, end - begin, 0});
    } else {
      parts.push_back({grads_, total_, 0});
    }
    device->all_reduce_sum(parts);
    device->wait("the all-reduce of the gradients");
    // The compute stream's next kernels (the step) read the sums: NCCL's stream is idle now.
  }
  summed_ = true;
}

}  // namespace duet::engine::cuda
