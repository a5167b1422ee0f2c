// estimate_cuda_memory for a CUDA build: the engine's own byte counts, made
// without a GPU (DeviceTransformer counts its carve before any allocation).
#include "engine/memory_estimate.hpp"

#include <fmt/format.h>

#include "engine/cuda/device_parameters.hpp"
#include "engine/cuda/device_shard.hpp"
#include "engine/cuda/sharded_gradients.hpp"
#include "engine/cuda/sharded_weights.hpp"
#include "engine/cuda/device_transformer.hpp"

namespace duet::engine {

MemoryEstimate estimate_cuda_memory(const model::ModelConfig& config, const MemoryPlan& plan) {
  if (plan.row_tokens < 1) fail("a memory estimate needs a row of at least one token (got {})", plan.row_tokens);
  if (plan.ranks < 1) fail("--gpus {}: at least one GPU", plan.ranks);
  cuda::check_zero_stage(plan.zero_stage, plan.lora.has_value());
  MemoryEstimate e;
  const DeviceLayout layout(config);
  // Under LoRA the model is frozen (bf16 weights only) and the reference is
  // the same weights with the adapter off. Under ZeRO-1 the model keeps bf16
  // weights and fp32 gradients, the shard (cuda::DeviceShard) the rest; under
  // ZeRO-2 the bf16 weights alone, the gradient's shard and staging
  // (cuda::ShardedGradients) the gradients; under ZeRO-3 also the bf16
  // weights of the model and the reference are a shard, their embedding,
  // final norm and LM head whole, and two gathered layers (cuda::ShardedWeights).
  const bool lora = plan.lora.has_value();
  const bool sharded = cuda::shards_optimizer(plan.zero_stage, plan.state, lora);
  const bool sharded_grads = sharded && plan.zero_stage >= 2;
  const bool sharded_weights = cuda::shards_weights(plan.zero_stage, plan.state, lora);
  const auto p =
      cuda::parameter_bytes(layout.total, cuda::model_state(plan.zero_stage, plan.state, lora), !sharded_weights);
  const auto w = cuda::sharded_weight_bytes(config, layout, plan.ranks);
  auto add_weights = [&](const char* whose) {
    if (!sharded_weights) {
      e.parts.emplace_back(fmt::format("{} (bf16)", whose), p.weights);
    } else {
      e.parts.emplace_back(fmt::format("{} (bf16), a 1/{} shard", whose, plan.ranks), w.shard);
      e.parts.emplace_back(fmt::format("{}: embedding, final norm, LM head (bf16, whole)", whose), w.outer);
    }
  };
  add_weights("weights");
  if (sharded_weights) e.parts.emplace_back("two gathered layers (bf16)", w.layers);
  if (p.grads) e.parts.emplace_back("gradients (fp32)", p.grads);
  if (p.master) e.parts.emplace_back("master weights (fp32)", p.master);
  if (p.moments) e.parts.emplace_back("AdamW moments (fp32)", p.moments);
  if (sharded) {
    const size_t shard = cuda::largest_shard(host_numel(layout), plan.ranks);
    e.parts.emplace_back(fmt::format("master and moments (fp32), a 1/{} shard", plan.ranks), 3 * sizeof(float) * shard);
    if (sharded_grads) {
      const auto g = cuda::sharded_gradient_bytes(config, layout, plan.ranks);
      e.parts.emplace_back(fmt::format("gradients (fp32), a 1/{} shard", plan.ranks), g.shard);
      e.parts.emplace_back("gradient staging (fp32: embedding, final norm, LM head, two layers)", g.staging);
    }
    // A save gathers every shard's fp32 master through NCCL, which stages
    // host buffers in one device buffer kept from then on (64 MiB pieces).
    if (plan.ranks > 1)
      e.parts.emplace_back("NCCL staging for checkpoints (from the first save)",
                           cuda::gather_staging_bytes(host_numel(layout), plan.ranks));
  }
  if (plan.reference_copy && !plan.lora) add_weights("reference model");
  std::optional<DeviceLayout> adapter_layout;
  if (plan.lora) {
    adapter_layout.emplace(layout_adapter(config, *plan.lora));
    e.parts.emplace_back("LoRA adapter and its state", cuda::parameter_bytes(adapter_layout->total, plan.state).total());
  }
  cuda::DeviceTransformer model(config, layout, plan.gradient_checkpointing);
  if (plan.lora) model.enable_lora(*plan.lora, *adapter_layout);
  const int64_t tokens = cuda::round_capacity(plan.row_tokens);
  const int64_t targets = cuda::round_capacity(plan.row_targets < 0 ? plan.row_tokens : plan.row_targets);
  e.parts.emplace_back(fmt::format("activations and scratch ({} tokens)", tokens),
                       cuda::workspace_bytes(model, tokens, targets));
  e.parts.emplace_back("cuBLASLt workspace", backend::cuda::kGemmWorkspaceBytes);
  return e;
}

}  // namespace duet::engine
