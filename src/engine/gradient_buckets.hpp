#pragma once
// ZeRO stage 2 on the CUDA engine: the weight gradients never exist whole on
// one GPU. The backward writes them, bucket by bucket, into fp32 staging
// buffers laid out like the device buffers; a finished bucket is summed over
// the ranks into each owner's part of it (one NCCL group of in-place reduces)
// and the owner adds its parts into its compact shard of the gradient (host
// order, as the master and moments: engine/shard_pieces.hpp). The buckets:
//   - one per decoder layer: its device range (in_norm .. down_proj, padding
//     included), reduced as soon as the backward leaves the layer;
//   - the outer bucket: embedding, final norm and LM head (their device
//     ranges staged one after the other). The LM head's gradient is made at
//     the start of the backward and the embedding's at its end (the same
//     tensor when tied), so its staging lives through the whole backward
//     anyway: it accumulates the step's micro-batches like the stage-0
//     gradient and is reduced once, before the optimizer step.
// Pure host code, tested on the CPU.
#include <cstddef>
#include <utility>
#include <vector>

#include "engine/device_layout.hpp"
#include "model/config.hpp"

namespace duet::engine {

// A rank's share of a bucket: staging [staging_offset, + numel) is shard
// [shard_offset, + numel) of rank `owner`.
struct BucketPart {
  size_t staging_offset = 0;
  size_t shard_offset = 0;
  size_t numel = 0;
  int owner = 0;
};

struct GradientBucket {
  std::vector<std::pair<size_t, size_t>> ranges;  // device [begin, end), staged one after another
  size_t numel = 0;                               // staging elements (padding included)
  std::vector<BucketPart> parts;                  // every rank's, rank by rank, in host order

  // Where device element `device_offset` (inside one of the ranges) is staged.
  size_t staging_offset(size_t device_offset) const;
};

struct GradientBuckets {
  GradientBucket outer;                // embedding, final norm, LM head
  std::vector<GradientBucket> layers;  // layer l's bucket at index l
  size_t largest_layer() const;        // staging elements of the largest layer bucket
};

// The buckets of `layout` (a model's, DeviceLayout(config)) cut over `ranks`
// shards (dist::ShardLayout of its host elements). Every parameter element is
// in exactly one part of one bucket.
GradientBuckets gradient_buckets(const model::ModelConfig& config, const DeviceLayout& layout, int ranks);

}  // namespace duet::engine
