#pragma once
// AdamW across data-parallel ranks, ZeRO as DeepSpeed defines its stages, on
// host buffers (the CPU engine). The flat parameter buffer is cut into one
// shard per rank (dist::ShardLayout); a rank keeps the AdamW moments of its
// shard only and updates only its shard of the fp32 master weights.
//   stage 0: gradients all-reduced, every rank updates everything (replicated)
//   stage 1: gradients all-reduced; shard update; weights all-gathered
//   stage 2: gradients reduce-scattered into a shard; shard update; all-gather
//   stage 3: as 2, but the weights are gathered only before they are next
//            used (gather_weights), so between steps a rank holds its shard
// Clipping uses the global norm: each rank's squared shard norm, all-reduced.
// The update of an element is the one-process AdamW update of the same
// summed gradient, so only the order of the gradient sum (over ranks) differs.
#include <cstdint>
#include <span>
#include <vector>

#include "dist/communicator.hpp"
#include "dist/shard_layout.hpp"
#include "engine/adamw.hpp"
#include "engine/parameters.hpp"

namespace duet::engine {

class ShardedAdamW {
 public:
  ShardedAdamW(dist::Communicator& comm, int zero_stage, std::vector<TensorSlot> slots, AdamWOptions options);

  // `grads` holds this rank's gradient sum; returns the global gradient norm
  // before clipping. Collective.
  double step(std::span<float> params, std::span<float> grads, double lr);
  // Brings every element of `params` up to date when only this rank's shard
  // is (stage 3 after a step, or after a resume). Collective.
  void gather_weights(std::span<float> params);
  bool weights_current() const { return weights_current_; }
  void mark_weights_stale() { weights_current_ = false; }  // a resume loaded only the shard
  // An engine that gathers its weights itself (the CUDA engine) took the resumed shard.
  void mark_weights_current() { weights_current_ = true; }

  int stage() const { return stage_; }
  dist::Communicator& comm() { return comm_; }
  const std::vector<TensorSlot>& slots() const { return slots_; }
  size_t total() const { return total_; }
  // The elements this rank updates: [shard_begin, shard_end) of the flat buffer.
  size_t shard_begin() const { return begin_; }
  size_t shard_end() const { return end_; }
  // How many ranks hold distinct shards (1 at stage 0, where all are replicas).
  int shard_count() const { return stage_ == 0 ? 1 : comm_.size(); }
  int shard_index() const { return stage_ == 0 ? 0 : comm_.rank(); }
  std::span<float> exp_avg() { return m_; }
  std::span<float> exp_avg_sq() { return v_; }
  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }

 private:
  // Calls f(slot, first, last) for each slot's overlap [first, last) with the shard.
  template <typename F>
  void for_each_shard_part(F&& f) const;

  dist::Communicator& comm_;
  int stage_;
  std::vector<TensorSlot> slots_;
  AdamWOptions options_;
  size_t total_ = 0, begin_ = 0, end_ = 0;
  std::vector<float> m_, v_;        // this shard's moments
  std::vector<float> grad_shard_;   // stages 2-3: the reduced gradient of this shard
  int64_t steps_ = 0;
  bool weights_current_ = true;
};

}  // namespace duet::engine
