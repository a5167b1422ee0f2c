#pragma once
// ZeRO stage 3 on the GPU: no rank holds the whole bf16 weights. Each keeps
//   - its shard's bf16 weights, compact and in host order like DeviceShard's
//     master (shard offsets of engine/shard_pieces.hpp);
//   - the embedding, final norm and LM head whole (the outer bucket of
//     engine/gradient_buckets.hpp: read at both ends of every pass, and
//     updated by their owners' steps, then broadcast: share_outer);
//   - two layer-sized buffers (LayerBuffers, shared by the policy and the
//     reference model) into which a pass gathers the layer it computes.
// open_layer(l, next) makes the compute stream wait for layer l (gathered by
// the previous open_layer, or now) and queues the gather of `next` into the
// other buffer on the collective stream (NCCL's own) behind what the compute
// stream has queued so far: each owner copies its parts of the layer from its
// shard into the buffer, then one NCCL group of broadcasts from the owners
// fills every rank's. A buffer remembers whose weights and which layer it
// holds, so a backward starts on the two layers its forward gathered last.
// Every rank must make the same passes in the same order (the gathers are
// collective): a rank with no row runs empty ones
// (DeviceTransformer::pass_without_rows). With one rank and no NCCL the copies
// run on the compute stream.
#include <cstdint>
#include <memory>
#include <vector>

#include "dist/communicator.hpp"
#include "engine/cuda/device_memory.hpp"
#include "engine/cuda/device_transformer.hpp"
#include "engine/cuda/zero_collectives.hpp"
#include "engine/gradient_buckets.hpp"
#include "engine/parameters.hpp"
#include "engine/shard_pieces.hpp"
#include "model/config.hpp"

namespace duet::engine::cuda {

// The device bytes of ZeRO-3's weights for `ranks` ranks (the largest rank's):
// the compact shard and the outer tensors per model, the two layer buffers once.
struct ShardedWeightBytes {
  size_t shard = 0, outer = 0, layers = 0;
};
ShardedWeightBytes sharded_weight_bytes(const model::ModelConfig& config, const DeviceLayout& layout, int ranks);

// The two gathered layers, shared by an engine's ShardedWeights.
class LayerBuffers {
 public:
  LayerBuffers(const model::ModelConfig& config, const DeviceLayout& layout);
  ~LayerBuffers();
  LayerBuffers(const LayerBuffers&) = delete;
  LayerBuffers& operator=(const LayerBuffers&) = delete;

 private:
  friend class ShardedWeights;
  struct Held {
    const void* owner = nullptr;  // the ShardedWeights whose layer is there (null: none)
    int64_t layer = -1;
  };
  bf16* slot(int64_t l) const { return buffers_.as<bf16>() + static_cast<size_t>(l % 2) * slot_elements_; }

  size_t slot_elements_ = 0;
  DeviceBuffer buffers_;
  Held held_[2];
  cudaEvent_t ready_[2] = {nullptr, nullptr}, queued_ = nullptr;
};

class ShardedWeights final : public WeightSource {
 public:
  ShardedWeights(const model::ModelConfig& config, const DeviceLayout& layout, int rank, int ranks,
                 std::shared_ptr<LayerBuffers> buffers, const char* what);
  ~ShardedWeights() override;

  // Before the first pass: the ranks' communicator (NCCL's device
  // collectives, or one rank without them).
  void set_communicator(dist::Communicator& comm);

  const bf16* at(size_t offset) override;
  void open_layer(int64_t l, int64_t next, cudaStream_t s) override;
  void close_layer(int64_t l, cudaStream_t s) override;
  void finish_pass() override;

  // Where this rank's piece `p` of the bf16 weights lives (a step or a load
  // writes it there): the outer buffer or the compact shard.
  bf16* own(const ShardPiece& p);
  // The values changed (a step, a load): no gathered layer is current.
  void changed();
  // Collective: each owner's pieces of the outer tensors to every rank.
  void share_outer(cudaStream_t s);
  // Device tensor `slot`'s fp32 values (on the device, every rank the same:
  // a load or a random init) rounded to bf16: the whole of an outer tensor,
  // this rank's pieces of a layer's. Local, no collective.
  void set_tensor(const DeviceSlot& slot, const float* values, cudaStream_t s);
  // Every tensor of `host` (host order, fp32) through set_tensor.
  void load(const DeviceLayout& layout, const ParameterSet<float>& host, cudaStream_t s);
  // The same values as `other` (the reference is the starting policy).
  void copy_from(const ShardedWeights& other, cudaStream_t s);

 private:
  void gather(int64_t l, cudaStream_t s);
  bool holds(int64_t l) const;

  GradientBuckets buckets_;
  int rank_;
  std::vector<ShardPiece> pieces_;  // this rank's
  std::shared_ptr<LayerBuffers> buffers_;
  DeviceBuffer shard_, outer_;
  std::vector<std::vector<dist::DeviceCollectives::Part>> layer_parts_;  // per layer: every owner's, in its buffer
  std::vector<std::vector<BucketPart>> layer_own_;                        // per layer: this rank's
  std::vector<dist::DeviceCollectives::Part> outer_parts_;
  int64_t open_ = -1;
  ZeroCollectives collectives_;
};

}  // namespace duet::engine::cuda
