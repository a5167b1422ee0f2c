#pragma once
// ZeRO stages 1-3 on the GPU: this rank's shard of the fp32 master weights
// and AdamW moments, compact and in host order (engine/shard_pieces.hpp),
// next to the full bf16 weights that DeviceParameters keeps (stages 1-2) or
// ZeRO-3's ShardedWeights (stage 3, where a step writes the bf16 pieces it
// owns and only the outer tensors are shared after it). At stage 1 the
// gradients are whole (DeviceParameters, all-reduced) and a step takes their
// norm as one GPU does; at stage 2 they are this shard's only
// (ShardedGradients, compact like the master) and the norm is the square root
// of the ranks' summed squares (stages 2 and 3). The step runs the fused AdamW once per piece
// (master, moments and a stage-2 gradient at the piece's shard offset, a
// stage-1 gradient and the bf16 weights at its device offset, the tensor's
// decay flag), then every owner's bf16 pieces go to every rank (one NCCL
// group of broadcasts). The full fp32 master and moments are never allocated
// on one GPU.
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "dist/communicator.hpp"
#include "dist/shard_layout.hpp"
#include "engine/adamw.hpp"
#include "engine/cuda/device_memory.hpp"
#include "engine/device_layout.hpp"
#include "engine/engine.hpp"
#include "engine/parameters.hpp"
#include "engine/shard_pieces.hpp"

namespace duet::engine::cuda {

using backend::cuda::bf16;

// The ZeRO stages the CUDA engine runs (0 to 3, not with LoRA): one line otherwise.
void check_zero_stage(int zero_stage, bool lora);

// ZeRO-1/2/3 training: the master weights and moments live in a DeviceShard.
bool shards_optimizer(int zero_stage, EngineState state, bool lora);
// ZeRO-3 training: the bf16 weights too (ShardedWeights), none whole.
bool shards_weights(int zero_stage, EngineState state, bool lora);
// The state the model's own weights are held in (DeviceParameters): frozen
// (bf16 only) under LoRA; under ZeRO-1 the bf16 weights and the whole gradient
// (the shard has the rest); under ZeRO-2 the bf16 weights alone
// (ShardedGradients has the gradient); under ZeRO-3 that state, but not on
// the device (shards_weights). The engine and the memory estimate both ask.
EngineState model_state(int zero_stage, EngineState state, bool lora);

// Where a step or a load writes the bf16 value of a shard's piece: the whole
// bf16 buffer at the piece's device offset (ZeRO-1/2: full_weights), or
// ZeRO-3's ShardedWeights::own.
using PieceWeights = std::function<bf16*(const ShardPiece&)>;
PieceWeights full_weights(bf16* weights);

// Elements of the largest rank's shard (rank 0's) of `host_elements`
// parameters cut over `ranks`: the length of its fp32 master and of each moment.
size_t largest_shard(size_t host_elements, int ranks);

// A save gathers every rank's fp32 master on every host (download), one
// broadcast of at most this many floats at a time: NCCL's staging of host
// buffers on the device, kept from the first save, is that size (64 MiB), not a shard.
inline constexpr size_t kGatherChunk = size_t{16} << 20;
size_t gather_staging_bytes(size_t host_elements, int ranks);

class DeviceShard {
 public:
  DeviceShard(const DeviceLayout& layout, int rank, int ranks, const AdamWOptions& adamw);

  size_t begin() const { return cut_.begin(rank_); }
  size_t end() const { return cut_.end(rank_); }
  int64_t steps() const { return steps_; }

  // Host state of this shard (master and moments: end() - begin() elements
  // each) -> device; the shard's bf16 weights are rewritten from the master.
  void load(std::span<const float> master, std::span<const float> exp_avg, std::span<const float> exp_avg_sq,
            int64_t steps, const PieceWeights& weights, cudaStream_t s);
  // Random init: the shard's part of device tensor `slot` (fp32 values at
  // `values`) into the master; the moments zero.
  void load_tensor(const DeviceSlot& slot, const float* values, cudaStream_t s);
  void clear_moments(cudaStream_t s);

  // Stage 1: clipping by the norm of all of `grads` (device layout, the
  // layout's total) and AdamW on the shard's pieces at `lr`; returns the norm
  // before clipping.
  double step(double lr, const float* grads, const PieceWeights& weights, cudaStream_t s);
  // Stage 2: `shard_grads` is this shard's summed gradient (compact, host
  // order); the norm over all ranks' shards (collective).
  double step_sharded(double lr, const float* shard_grads, dist::Communicator& comm, const PieceWeights& weights,
                      cudaStream_t s);
  // Collective: each rank's bf16 pieces of `weights` to every rank.
  void share_weights(dist::Communicator& comm, bf16* weights, cudaStream_t s) const;
  // Collective: every rank's fp32 master into `host` (host order), this
  // shard's moments into the spans.
  void download(dist::Communicator& comm, ParameterSet<float>& host, std::span<float> exp_avg,
                std::span<float> exp_avg_sq, cudaStream_t s) const;

 private:
  // AdamW on each own piece, its gradient at grads_of(piece), clipped by the norm at grad_norm_.
  template <typename GradsOf>
  double update(double lr, GradsOf&& grads_of, const PieceWeights& weights, cudaStream_t s);

  AdamWOptions adamw_;
  int rank_;
  dist::ShardLayout cut_;
  size_t total_;                                // the device layout's elements (padding included)
  std::vector<std::vector<ShardPiece>> pieces_;  // per rank
  DeviceBuffer master_, m_, v_;                  // this shard, compact
  DeviceBuffer piece_bounds_, piece_decay_;      // per own piece: {0, numel} and its flag (AdamW's slot table)
  DeviceBuffer norm_partials_, grad_norm_;
  int64_t steps_ = 0;
};

}  // namespace duet::engine::cuda
