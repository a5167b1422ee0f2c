// engine::estimate_cuda_memory against counts written out by hand from what
// the CUDA engine keeps (docs/memory.md): the parameter state per byte, the
// activations each layer saves per token, what recompute and LoRA change,
// and the longest row that fits a budget. Runs without a GPU (the estimate
// counts a dry run of the engine's carving); in a build without the CUDA
// engine the estimate is one clear error.
#include <gtest/gtest.h>

#include <algorithm>

#include <fmt/format.h>

#include "engine/device_layout.hpp"
#include "engine/memory_estimate.hpp"
#include "engine/parameters.hpp"
#include "model/presets.hpp"
#include "util/error.hpp"

namespace duet::engine {
namespace {

#ifdef DUET_WITH_CUDA

size_t parameters(const std::vector<TensorSlot>& slots) {
  size_t n = 0;
  for (const auto& s : slots) n += s.numel;
  return n;
}

// A published architecture's parameter counts as the ZeRO tests need them.
struct Sizes {
  model::ModelConfig c;
  size_t padded = 0;  // device elements, padding included
  size_t n = 0;       // parameters
  size_t layer = 0;   // one decoder layer's device elements
  size_t outer = 0;   // the rest: embedding, final norm, LM head (with padding)
};

Sizes sizes_of(const char* arch) {
  Sizes z;
  z.c = model::preset_config(arch);
  const DeviceLayout layout(z.c);
  z.padded = layout.total, z.n = parameters(layout_parameters(z.c));
  z.layer = layout.offset("model.layers.1.input_layernorm.weight") -
            layout.offset("model.layers.0.input_layernorm.weight");
  z.outer = z.padded - static_cast<size_t>(z.c.num_hidden_layers) * z.layer;
  return z;
}

size_t activations(const model::ModelConfig& c, MemoryPlan p, int64_t tokens) {
  p.row_tokens = tokens;
  const auto e = estimate_cuda_memory(c, p);
  for (const auto& [what, bytes] : e.parts)
    if (what.starts_with("activations")) return bytes;
  ADD_FAILURE() << "no activations part";
  return 0;
}

// Bytes per token that one layer keeps for its backward beside its input x:
// bf16 q|k|v, attention output, h, gate|up; fp32 two RMSNorm statistics and
// one log-sum-exp per head. (n1, n2 and act are rebuilt, in one shared buffer.)
size_t layer_bytes_per_token(const model::ModelConfig& c) {
  const size_t d = c.hidden_size, q = c.q_size(), kv = c.kv_size(), f = c.intermediate_size;
  return 2 * ((q + 2 * kv) + q + d + 2 * f) + 4 * (2 + c.num_attention_heads);
}

TEST(MemoryEstimate, FullFineTuningHoldsTwentyBytesPerParameter) {
  for (const char* arch : {"llama-3.2-1b", "qwen2.5-7b"}) {
    const auto c = model::preset_config(arch);
    const size_t padded = DeviceLayout(c).total, n = parameters(layout_parameters(c));
    ASSERT_GE(padded, n);
    EXPECT_LT(static_cast<double>(padded - n), 1e-3 * static_cast<double>(n)) << arch << ": padding";
    const auto e = estimate_cuda_memory(c, MemoryPlan{});
    EXPECT_EQ(e.part("weights (bf16)"), 2 * padded) << arch;
    EXPECT_EQ(e.part("gradients (fp32)"), 4 * padded) << arch;
    EXPECT_EQ(e.part("master weights (fp32)"), 4 * padded) << arch;
    EXPECT_EQ(e.part("AdamW moments (fp32)"), 8 * padded) << arch;
    EXPECT_EQ(e.part("reference model (bf16)"), 2 * padded) << arch;
    MemoryPlan no_optimizer;
    no_optimizer.state = EngineState::gradients, no_optimizer.reference_copy = false;
    const auto g = estimate_cuda_memory(c, no_optimizer);
    EXPECT_EQ(g.part("master weights (fp32)") + g.part("AdamW moments (fp32)") + g.part("reference model (bf16)"), 0u);
    EXPECT_EQ(e.total() - g.total(), 14 * padded) << arch << ": master, moments and reference";
  }
}

// ZeRO-1: each GPU keeps bf16 weights and fp32 gradients whole, and
// ceil(P / N) elements (P unpadded, in host order) of master and both
// moments; with several GPUs NCCL's staging buffer of the save's gather (one
// 64 MiB piece of a shard at a time) from the first save. One GPU at stage 1 is stage 0.
TEST(MemoryEstimate, ZeroOneShardsMasterAndMomentsPerGpu) {
  const auto c = model::preset_config("llama-3.2-1b");
  const size_t padded = DeviceLayout(c).total, n = parameters(layout_parameters(c));
  const auto whole = estimate_cuda_memory(c, MemoryPlan{});
  for (int gpus : {1, 2, 3, 8}) {
    SCOPED_TRACE(gpus);
    MemoryPlan p;
    p.ranks = gpus, p.zero_stage = 1;
    const auto e = estimate_cuda_memory(c, p);
    const size_t shard = (n + static_cast<size_t>(gpus) - 1) / static_cast<size_t>(gpus);
    EXPECT_EQ(e.part("weights (bf16)"), 2 * padded);
    EXPECT_EQ(e.part("gradients (fp32)"), 4 * padded);
    EXPECT_EQ(e.part("master weights (fp32)") + e.part("AdamW moments (fp32)"), 0u);
    EXPECT_EQ(e.part(fmt::format("master and moments (fp32), a 1/{} shard", gpus)), 12 * shard);
    const size_t staging = gpus > 1 ? 4 * std::min(shard, size_t{16} << 20) : 0;  // gathered in 64 MiB pieces
    EXPECT_EQ(e.part("NCCL staging for checkpoints (from the first save)"), staging);
    EXPECT_EQ(e.total() + 12 * padded, whole.total() + 12 * shard + staging);
    p.ranks = 1, p.zero_stage = 0;
    MemoryPlan stage0_many = p;
    stage0_many.ranks = gpus;  // stage 0 replicates everything: the GPU count changes nothing
    EXPECT_EQ(estimate_cuda_memory(c, stage0_many).total(), whole.total());
  }
  MemoryPlan no_optimizer;  // nothing to shard without the optimizer's state
  no_optimizer.state = EngineState::gradients;
  MemoryPlan sharded = no_optimizer;
  sharded.ranks = 4, sharded.zero_stage = 1;
  EXPECT_EQ(estimate_cuda_memory(c, sharded).total(), estimate_cuda_memory(c, no_optimizer).total());
  MemoryPlan none;
  none.ranks = 0;
  EXPECT_THROW(estimate_cuda_memory(c, none), Error);
}

// ZeRO-2: each GPU keeps the bf16 weights whole and ceil(P / N) elements of
// master, both moments and the gradient; the gradient's staging is the outer
// bucket (embedding, final norm, LM head: every device element outside the
// layers) and two layers, whatever N.
TEST(MemoryEstimate, ZeroTwoShardsTheGradientsWithTwoLayersStaged) {
  for (const char* arch : {"llama-3.2-1b", "llama-3.1-8b"}) {
    SCOPED_TRACE(arch);
    const auto [c, padded, n, layer, outer] = sizes_of(arch);
    const size_t staging = 4 * (outer + 2 * layer);
    for (int gpus : {1, 2, 3, 8}) {
      SCOPED_TRACE(gpus);
      MemoryPlan p;
      p.ranks = gpus, p.zero_stage = 2;
      const auto e = estimate_cuda_memory(c, p);
      p.zero_stage = 1;
      const auto one = estimate_cuda_memory(c, p);
      const size_t shard = (n + static_cast<size_t>(gpus) - 1) / static_cast<size_t>(gpus);
      EXPECT_EQ(e.part("weights (bf16)"), 2 * padded);
      EXPECT_EQ(e.part("gradients (fp32)"), 0u);
      EXPECT_EQ(e.part(fmt::format("gradients (fp32), a 1/{} shard", gpus)), 4 * shard);
      EXPECT_EQ(e.part(fmt::format("master and moments (fp32), a 1/{} shard", gpus)), 12 * shard);
      EXPECT_EQ(e.part("gradient staging (fp32: embedding, final norm, LM head, two layers)"), staging);
      EXPECT_EQ(e.total() + 4 * padded, one.total() + 4 * shard + staging);
    }
  }
}

// ZeRO-3: stage 2, but the bf16 weights of the model and of the reference
// are each a ceil(P / N) shard plus their outer tensors (embedding, final
// norm, LM head) whole, and two gathered layers (the largest layer, rounded
// to 128 elements) serve both. Without the optimizer nothing is sharded.
TEST(MemoryEstimate, ZeroThreeShardsTheWeightsWithTwoLayersGathered) {
  for (const char* arch : {"llama-3.2-1b", "llama-3.1-8b"}) {
    SCOPED_TRACE(arch);
    const auto [c, padded, n, layer, outer] = sizes_of(arch);
    const size_t gathered = 2 * 2 * ((layer + 127) / 128 * 128);
    for (int gpus : {1, 2, 3, 8}) {
      SCOPED_TRACE(gpus);
      MemoryPlan p;
      p.ranks = gpus, p.zero_stage = 3;
      const auto e = estimate_cuda_memory(c, p);
      p.zero_stage = 2;
      const auto two = estimate_cuda_memory(c, p);
      const size_t shard = (n + static_cast<size_t>(gpus) - 1) / static_cast<size_t>(gpus);
      EXPECT_EQ(e.part("weights (bf16)") + e.part("reference model (bf16)"), 0u);
      EXPECT_EQ(e.part(fmt::format("weights (bf16), a 1/{} shard", gpus)), 2 * shard);
      EXPECT_EQ(e.part(fmt::format("reference model (bf16), a 1/{} shard", gpus)), 2 * shard);
      EXPECT_EQ(e.part("weights: embedding, final norm, LM head (bf16, whole)"), 2 * outer);
      EXPECT_EQ(e.part("reference model: embedding, final norm, LM head (bf16, whole)"), 2 * outer);
      EXPECT_EQ(e.part("two gathered layers (bf16)"), gathered);
      EXPECT_EQ(e.total() + 2 * 2 * padded, two.total() + 2 * 2 * (shard + outer) + gathered);
    }
  }
  const auto c = model::preset_config("llama-3.2-1b");
  MemoryPlan no_optimizer;
  no_optimizer.state = EngineState::gradients;
  MemoryPlan sharded = no_optimizer;
  sharded.ranks = 4, sharded.zero_stage = 3;
  EXPECT_EQ(estimate_cuda_memory(c, sharded).total(), estimate_cuda_memory(c, no_optimizer).total());
}

TEST(MemoryEstimate, EachLayerSavesItsActivationsPerToken) {
  // Between two row lengths (multiples of 256: no alignment slack) the
  // activations grow by at least the kept layers, and by little more: the
  // shared n1, n2 and act, one layer's backward scratch and the LM head's
  // chunk per target.
  const auto c = model::preset_config("llama-3.1-8b");
  const MemoryPlan plan;
  const size_t per_token = (activations(c, plan, 8192) - activations(c, plan, 4096)) / 4096;
  const size_t layers = c.num_hidden_layers * (layer_bytes_per_token(c) + 2 * c.hidden_size);  // + x
  EXPECT_GE(per_token, layers);
  EXPECT_LT(per_token, layers * 115 / 100) << "scratch beyond the kept layers";
  std::printf("  llama-3.1-8b: %.2f MiB per token of a row (kept layers %.2f MiB)\n", per_token / 1048576.0,
              layers / 1048576.0);
}

TEST(MemoryEstimate, RecomputeKeepsOneLayerSetAndEveryInput) {
  // Recompute frees all but one of the kept sets; the shared buffers and
  // every layer's input x stay.
  for (const char* arch : {"llama-3.2-1b", "mistral-7b"}) {
    const auto c = model::preset_config(arch);
    MemoryPlan saved, recompute;
    recompute.gradient_checkpointing = true;
    const int64_t n = 4096;
    const size_t freed = activations(c, saved, n) - activations(c, recompute, n);
    EXPECT_EQ(freed, static_cast<size_t>(c.num_hidden_layers - 1) * layer_bytes_per_token(c) * n) << arch;
  }
}

TEST(MemoryEstimate, LoraFreezesTheModelAndTrainsOnlyTheAdapter) {
  const auto c = model::preset_config("llama-3.1-8b");
  MemoryPlan plan;
  plan.lora = LoraConfig{};
  plan.lora->r = 16, plan.lora->target_modules = parse_target_modules({"all-linear"});
  const auto e = estimate_cuda_memory(c, plan);
  EXPECT_EQ(e.part("weights (bf16)"), 2 * DeviceLayout(c).total);
  EXPECT_EQ(e.part("gradients (fp32)") + e.part("master weights (fp32)") + e.part("AdamW moments (fp32)"), 0u);
  EXPECT_EQ(e.part("reference model (bf16)"), 0u) << "the reference is the base, adapter off";
  // r (in + out) per adapted product: q, k, v, o, gate, up, down in each layer.
  const int64_t d = c.hidden_size, q = c.q_size(), kv = c.kv_size(), f = c.intermediate_size;
  const auto adapter = static_cast<size_t>(16 * c.num_hidden_layers *
                                           ((d + q) + 2 * (d + kv) + (q + d) + 2 * (d + f) + (f + d)));
  EXPECT_EQ(parameters(layout_adapter(c, *plan.lora)), adapter);
  const size_t held = e.part("LoRA adapter and its state");
  EXPECT_GE(held, 18 * adapter);  // bf16 2 + fp32 gradients 4, master 4, moments 8
  EXPECT_LT(held, 18 * adapter + 18 * 256 * 7 * c.num_hidden_layers * 2) << "beyond per-tensor alignment";
}

TEST(MemoryEstimate, LongestRowWithinABudget) {
  const auto c = model::preset_config("llama-3.2-1b");
  MemoryPlan plan;
  const size_t state = estimate_cuda_memory(c, plan).total() - activations(c, plan, 8192);
  const size_t budget = state + activations(c, plan, 8192) * 3 / 2;
  const int64_t longest = longest_row_within(c, plan, budget);
  ASSERT_GT(longest, 8192);
  EXPECT_EQ(longest % 256, 0);
  plan.row_tokens = longest;
  EXPECT_LE(estimate_cuda_memory(c, plan).total(), budget);
  plan.row_tokens = longest + 256;
  EXPECT_GT(estimate_cuda_memory(c, plan).total(), budget);
  EXPECT_EQ(longest_row_within(c, plan, state / 2), 0) << "the weights alone do not fit";
  MemoryPlan recompute = plan;
  recompute.gradient_checkpointing = true;
  EXPECT_GT(longest_row_within(c, recompute, budget), 2 * longest);
}

TEST(MemoryEstimate, RejectsAnEmptyRow) {
  MemoryPlan plan;
  plan.row_tokens = 0;
  EXPECT_THROW(estimate_cuda_memory(model::preset_config("llama-3.2-1b"), plan), Error);
}

#else

TEST(MemoryEstimate, ABuildWithoutCudaSaysSo) {
  try {
    estimate_cuda_memory(model::preset_config("llama-3.2-1b"), MemoryPlan{});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA toolkit"), std::string::npos) << e.what();
  }
}

#endif

}  // namespace
}  // namespace duet::engine
