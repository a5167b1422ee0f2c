#pragma once
// ZeRO stage 1 on the GPU: this rank's shard of the fp32 master weights and
// AdamW moments, compact and in host order (engine/shard_pieces.hpp), next to
// the full bf16 weights and fp32 gradients that DeviceParameters keeps. A step
// takes the norm of the whole (all-reduced) gradient as one GPU does, runs the
// fused AdamW once per piece (master and moments at the piece's shard offset,
// gradients and bf16 weights at its device offset, the tensor's decay flag),
// then every owner's bf16 pieces are broadcast to every rank. The full fp32
// master and moments are never allocated on one GPU.
#include <cstdint>
#include <span>
#include <vector>

#include "dist/communicator.hpp"
#include "dist/shard_layout.hpp"
#include "engine/adamw.hpp"
#include "engine/cuda/device_memory.hpp"
#include "engine/device_layout.hpp"
#include "engine/parameters.hpp"
#include "engine/shard_pieces.hpp"

namespace duet::engine::cuda {

using backend::cuda::bf16;

// The ZeRO stages the CUDA engine runs (0 and 1, not with LoRA): one line otherwise.
void check_zero_stage(int zero_stage, bool lora);

// Elements of the largest rank's shard (rank 0's) of `host_elements`
// parameters cut over `ranks`: the length of its fp32 master and of each moment.
size_t largest_shard(size_t host_elements, int ranks);

class DeviceShard {
 public:
  DeviceShard(const DeviceLayout& layout, int rank, int ranks, const AdamWOptions& adamw);

  size_t begin() const { return cut_.begin(rank_); }
  size_t end() const { return cut_.end(rank_); }
  int64_t steps() const { return steps_; }

  // Host state of this shard (master and moments: end() - begin() elements
  // each) -> device; the shard's bf16 weights are rewritten from the master.
  void load(std::span<const float> master, std::span<const float> exp_avg, std::span<const float> exp_avg_sq,
            int64_t steps, bf16* weights, cudaStream_t s);
  // Random init: the shard's part of device tensor `slot` (fp32 values at
  // `values`) into the master; the moments zero.
  void load_tensor(const DeviceSlot& slot, const float* values, cudaStream_t s);
  void clear_moments(cudaStream_t s);

  // Clipping by the norm of all of `grads` (the layout's total) and AdamW on
  // the shard's pieces at `lr`; returns the norm before clipping.
  double step(double lr, const float* grads, bf16* weights, cudaStream_t s);
  // Collective: each rank's bf16 pieces of `weights` to every rank.
  void share_weights(dist::Communicator& comm, bf16* weights, cudaStream_t s) const;
  // Collective: every rank's fp32 master into `host` (host order), this
  // shard's moments into the spans.
  void download(dist::Communicator& comm, ParameterSet<float>& host, std::span<float> exp_avg,
                std::span<float> exp_avg_sq, cudaStream_t s) const;

 private:
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
