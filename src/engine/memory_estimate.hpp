#pragma once
// The CUDA engine's GPU memory, by part, before anything runs: the byte counts
// its buffers are allocated with (the parameter state, the reference copy, a
// dry run of the activation arena's carving), so a run can be planned without
// a GPU and an out-of-memory error can say what would fit. Not counted: the
// CUDA context and the libraries' own memory (docs/memory.md measures it).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine.hpp"
#include "engine/lora.hpp"
#include "model/config.hpp"

namespace duet::engine {

struct MemoryPlan {
  EngineState state = EngineState::training;  // gradients: the paper's no-optimizer step
  bool reference_copy = true;  // a bf16 reference beside the policy (not with LoRA, nor with a reference cache)
  bool gradient_checkpointing = false;
  std::optional<LoraConfig> lora;
  int64_t row_tokens = 8192;  // the longest row: --pack-tokens when packing
  int64_t row_targets = -1;   // its response tokens; -1: as many as row_tokens (an upper bound)
  int ranks = 1;              // data-parallel GPUs
  int zero_stage = 0;         // 1: each GPU keeps its 1/ranks shard of the fp32 master and moments; 2: also of the gradients
};

struct MemoryEstimate {
  std::vector<std::pair<std::string, size_t>> parts;  // (what, bytes), in allocation order
  size_t total() const;
  size_t part(const std::string& name) const;  // 0 when absent
};

// Fails with one line in a build without the CUDA engine.
MemoryEstimate estimate_cuda_memory(const model::ModelConfig& config, const MemoryPlan& plan);

// The longest row (a multiple of 256 tokens, targets = tokens) whose estimate
// is at most `bytes`; 0 when not even 256 tokens fit.
int64_t longest_row_within(const model::ModelConfig& config, MemoryPlan plan, size_t bytes);

// The largest multiple of 256 tokens for which `fits` (monotone: true up to
// some length, false beyond) holds, by bisection; 0 when 256 does not fit.
int64_t longest_fitting_row(const std::function<bool(int64_t tokens)>& fits);

}  // namespace duet::engine
