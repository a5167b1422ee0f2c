#include "engine/cuda/sharded_gradients.hpp"

#include "backend/cuda/layers.hpp"
#include "dist/shard_layout.hpp"
#include "engine/shard_pieces.hpp"
#include "util/error.hpp"

namespace duet::engine::cuda {

namespace bc = duet::backend::cuda;
using bc::check;

ShardedGradientBytes sharded_gradient_bytes(const model::ModelConfig& config, const DeviceLayout& layout, int ranks) {
  const GradientBuckets b = gradient_buckets(config, layout, 1);  // the staging does not depend on the ranks
  return {sizeof(float) * (b.outer.numel + 2 * b.largest_layer()),
          sizeof(float) * dist::ShardLayout(host_numel(layout), ranks).size(0)};
}

ShardedGradients::ShardedGradients(const model::ModelConfig& config, const DeviceLayout& layout, int rank, int ranks)
    : buckets_(gradient_buckets(config, layout, ranks)), rank_(rank) {
  if (ranks < 1 || rank < 0 || rank >= ranks) fail("internal: rank {} of {} ranks", rank, ranks);
  layer_slot_ = (buckets_.largest_layer() + 63) / 64 * 64;  // both slots 256-byte aligned, as the device layout
  shard_numel_ = dist::ShardLayout(host_numel(layout), ranks).size(rank);
  staging_.allocate(2 * layer_slot_ * sizeof(float), "ZeRO-2's staging of two layers' gradients");
  outer_.allocate(buckets_.outer.numel * sizeof(float), "ZeRO-2's staging of the embedding, final norm and LM head");
  shard_.allocate(shard_numel_ * sizeof(float), "this rank's shard of the fp32 gradients");
  layer_reduce_.resize(buckets_.layers.size());
  layer_own_.resize(buckets_.layers.size());
  for (size_t l = 0; l < buckets_.layers.size(); ++l)
    plan(buckets_.layers[l], slot(static_cast<int64_t>(l)), layer_reduce_[l], layer_own_[l]);
  plan(buckets_.outer, outer_.as<float>(), outer_reduce_, outer_own_);
  for (cudaEvent_t* e : {&ready_[0], &ready_[1], &free_[0], &free_[1], &outer_ready_})
    check(cudaEventCreateWithFlags(e, cudaEventDisableTiming), "creating a CUDA event");
}

ShardedGradients::~ShardedGradients() {
  for (cudaEvent_t e : {ready_[0], ready_[1], free_[0], free_[1], outer_ready_})
    if (e) cudaEventDestroy(e);
}

void ShardedGradients::plan(const GradientBucket& bucket, float* base,
                            std::vector<dist::DeviceCollectives::Part>& reduce, std::vector<Part>& own) const {
  for (const BucketPart& p : bucket.parts) {
    reduce.push_back({base + p.staging_offset, p.numel, p.owner});
    if (p.owner == rank_) own.push_back({p.staging_offset, p.shard_offset, p.numel});
  }
}

void ShardedGradients::set_communicator(dist::Communicator& comm) { collectives_.bind(comm, "ZeRO-2/3"); }

void ShardedGradients::zero(cudaStream_t s) {
  check(cudaMemsetAsync(shard_.as<float>(), 0, shard_.bytes(), s), "clearing the gradients");
  check(cudaMemsetAsync(outer_.as<float>(), 0, outer_.bytes(), s), "clearing the gradients");
  outer_reduced_ = false;
}

float* ShardedGradients::at(size_t offset) {
  if (outer_reduced_) fail("internal: a ZeRO-2 backward after the step's gradient was reduced (zero_grad first)");
  if (open_ >= 0) {
    const auto& range = buckets_.layers[static_cast<size_t>(open_)].ranges.front();
    if (offset >= range.first && offset < range.second) return slot(open_) + (offset - range.first);
  }
  return outer_.as<float>() + buckets_.outer.staging_offset(offset);  // fails for another layer's tensor
}

void ShardedGradients::open_layer(int64_t l, cudaStream_t s) {
  const int k = static_cast<int>(l % 2);
  // The slot's last reduce (layer l + 2's) must have been added into the shard before it is cleared.
  check(cudaStreamWaitEvent(s, free_[k], 0), "waiting for a gradient bucket");
  check(cudaMemsetAsync(slot(l), 0, buckets_.layers[static_cast<size_t>(l)].numel * sizeof(float), s),
        "clearing a gradient bucket");
  open_ = l;
}

void ShardedGradients::close_layer(int64_t l, cudaStream_t s) {
  const int k = static_cast<int>(l % 2);
  const cudaStream_t c = collectives_.after(s, ready_[k]);
  if (auto* device = collectives_.device()) device->reduce_sum(layer_reduce_[static_cast<size_t>(l)]);
  const float* base = slot(l);
  for (const Part& p : layer_own_[static_cast<size_t>(l)])
    bc::add_f32(base + p.staging_offset, shard_.as<float>() + p.shard_offset, static_cast<int64_t>(p.numel), c);
  check(cudaEventRecord(free_[k], c), "recording a gradient bucket");
  open_ = -1;
}

void ShardedGradients::finish_backward() {
  if (auto* device = collectives_.device()) device->wait("ZeRO-2's reduce of the gradients");
}

void ShardedGradients::finish_step(cudaStream_t s) {
  if (outer_reduced_) return;
  const cudaStream_t c = collectives_.after(s, outer_ready_);
  if (auto* device = collectives_.device()) device->reduce_sum(outer_reduce_);
  // Copied, not added: the staging holds the whole step's sum of these tensors, as stage 0's buffer does.
  for (const Part& p : outer_own_)
    check(cudaMemcpyAsync(shard_.as<float>() + p.shard_offset, outer_.as<float>() + p.staging_offset,
                          p.numel * sizeof(float), cudaMemcpyDeviceToDevice, c),
          "adding the outer gradient bucket into the shard");
  if (auto* device = collectives_.device())
    device->wait("ZeRO-2's reduce of the embedding, final norm and LM head gradients");
  outer_reduced_ = true;
}

}  // namespace duet::engine::cuda
