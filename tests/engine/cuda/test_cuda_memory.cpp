// duet estimate-memory's numbers against what the CUDA engine takes from the
// GPU (label cuda): a Llama of ~0.3 B parameters with random weights made on
// the device, in the training state with a reference copy, its activations
// reserved for a row, then with LoRA and recompute. The device's used memory
// grows by the estimate within 2% + 64 MiB (the allocator's 2 MiB pages,
// cuBLASLt's handle, the small tables the estimate leaves out).
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include "engine/cuda_engine.hpp"
#include "engine/memory_estimate.hpp"
#include "model/presets.hpp"

namespace duet::engine {
namespace {

size_t used_bytes() {
  size_t free = 0, total = 0;
  EXPECT_EQ(cudaMemGetInfo(&free, &total), cudaSuccess);
  return total - free;
}

model::ModelConfig mid_size_llama() {
  model::ModelConfig c = model::preset_config("llama-3.2-1b");
  c.num_hidden_layers = 4;  // ~0.3 B parameters with the 128k vocabulary (tied)
  return c;
}

void expect_estimate_is_what_the_engine_takes(const MemoryPlan& plan, const std::string& what) {
  SCOPED_TRACE(what);
  const model::ModelConfig config = mid_size_llama();
  EngineOptions o;
  o.device = "cuda";
  o.random_model = config, o.random_seed = 7;
  o.state = plan.state;
  o.gradient_checkpointing = plan.gradient_checkpointing;
  o.lora = plan.lora;
  o.reference_is_start = plan.reference_copy && !plan.lora;
  o.reference_is_base = static_cast<bool>(plan.lora);
  cudaFree(nullptr);  // the context first: it is not the engine's
  const size_t before = used_bytes();
  {
    CudaEngine engine(o);
    engine.reserve(plan.row_tokens, plan.row_tokens);
    const double taken = static_cast<double>(used_bytes() - before);
    const double estimate = static_cast<double>(estimate_cuda_memory(config, plan).total());
    std::printf("  %s: engine %.3f GiB, estimate %.3f GiB\n", what.c_str(), taken / 1073741824.0,
                estimate / 1073741824.0);
    EXPECT_NEAR(taken, estimate, 0.02 * estimate + 64.0 * 1048576.0);
  }
}

TEST(CudaMemoryEstimate, IsWhatTheEngineTakes) {
  MemoryPlan full;
  full.row_tokens = 4096;
  expect_estimate_is_what_the_engine_takes(full, "training, reference copy, 4096 tokens");
  MemoryPlan recompute = full;
  recompute.gradient_checkpointing = true, recompute.state = EngineState::gradients, recompute.reference_copy = false;
  expect_estimate_is_what_the_engine_takes(recompute, "no optimizer, no reference, recompute");
  MemoryPlan lora = full;
  lora.lora = LoraConfig{};
  lora.lora->target_modules = parse_target_modules({"all-linear"});
  expect_estimate_is_what_the_engine_takes(lora, "LoRA r=16, all linear");
}

}  // namespace
}  // namespace duet::engine
