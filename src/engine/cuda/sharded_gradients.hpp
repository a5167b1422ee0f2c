#pragma once
// ZeRO stage 2 on the GPU: the backward's weight gradients go into staging
// buffers bucket by bucket (engine/gradient_buckets.hpp) and are summed over
// the ranks into this rank's compact shard of the gradient (host order, as
// DeviceShard's master and moments), so no rank holds the whole fp32
// gradient. Two layer-sized staging buffers alternate: when the backward
// leaves layer l, the compute stream records an event, the collective stream
// (NCCL's own) waits for it, reduces the layer's parts in place into their
// owners' staging (one NCCL group) and adds this rank's parts into the shard,
// then records that the buffer is free again; the backward of layer l - 1
// meanwhile fills the other buffer. The outer bucket (embedding, final norm,
// LM head) accumulates the step's micro-batches in its own staging, as stage
// 0's gradient does, and is reduced once, before the optimizer step. With one
// rank and no NCCL (the single-process communicator) the adds run on the
// compute stream and nothing is reduced.
#include <cstdint>
#include <vector>

#include "dist/communicator.hpp"
#include "engine/cuda/device_memory.hpp"
#include "engine/cuda/device_transformer.hpp"
#include "engine/cuda/zero_collectives.hpp"
#include "engine/gradient_buckets.hpp"
#include "model/config.hpp"

namespace duet::engine::cuda {

// The device bytes ShardedGradients holds: staging (the outer bucket and two
// layer buckets) and this rank's shard of the gradient (the largest rank's).
struct ShardedGradientBytes {
  size_t staging = 0, shard = 0;
};
ShardedGradientBytes sharded_gradient_bytes(const model::ModelConfig& config, const DeviceLayout& layout, int ranks);

class ShardedGradients final : public GradientSink {
 public:
  ShardedGradients(const model::ModelConfig& config, const DeviceLayout& layout, int rank, int ranks);
  ~ShardedGradients() override;
  ShardedGradients(const ShardedGradients&) = delete;
  ShardedGradients& operator=(const ShardedGradients&) = delete;

  // Before the first backward: the ranks' communicator (NCCL's device
  // collectives, or one rank without them).
  void set_communicator(dist::Communicator& comm);
  bool has_communicator() const { return collectives_.bound(); }

  // zero_grad: the shard and the outer bucket's staging to zero.
  void zero(cudaStream_t s);
  // GradientSink, used by DeviceTransformer::backward.
  float* at(size_t offset) override;
  void open_layer(int64_t l, cudaStream_t s) override;
  void close_layer(int64_t l, cudaStream_t s) override;
  // After a backward: waits until its layers are reduced (collective).
  void finish_backward();
  // Before the step: the outer bucket reduced into the shard, once a step
  // (collective); the shard is then the step's summed gradient.
  void finish_step(cudaStream_t s);
  bool step_finished() const { return outer_reduced_; }
  const float* shard() const { return shard_.as<float>(); }
  size_t shard_size() const { return shard_numel_; }

 private:
  struct Part {  // as BucketPart, for this rank's adds
    size_t staging_offset, shard_offset, numel;
  };
  // Every rank's parts of `bucket` staged at `base`, and this rank's own.
  void plan(const GradientBucket& bucket, float* base, std::vector<dist::DeviceCollectives::Part>& reduce,
            std::vector<Part>& own) const;
  float* slot(int64_t l) const { return staging_.as<float>() + static_cast<size_t>(l % 2) * layer_slot_; }

  GradientBuckets buckets_;
  int rank_;
  size_t layer_slot_ = 0, shard_numel_ = 0;
  DeviceBuffer staging_, outer_, shard_;  // two layer slots; the outer bucket; this rank's gradient
  std::vector<std::vector<dist::DeviceCollectives::Part>> layer_reduce_;  // per layer, into its slot
  std::vector<std::vector<Part>> layer_own_;
  std::vector<dist::DeviceCollectives::Part> outer_reduce_;
  std::vector<Part> outer_own_;
  cudaEvent_t ready_[2] = {nullptr, nullptr}, free_[2] = {nullptr, nullptr}, outer_ready_ = nullptr;
  ZeroCollectives collectives_;
  int64_t open_ = -1;                         // the layer whose gradients are being written
  bool outer_reduced_ = false;
};

}  // namespace duet::engine::cuda
