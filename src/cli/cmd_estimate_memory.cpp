// duet estimate-memory: the GPU memory a CUDA run will take, part by part,
// before renting the GPU: the engine's own byte counts (engine/memory_estimate),
// and the longest row that fits a GPU of a given size. See docs/memory.md.
#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "engine/memory_estimate.hpp"
#include "util/error.hpp"

namespace duet::cli {

namespace {

constexpr double kGiB = 1073741824.0;

struct EstimateOptions {
  ModelSource source;
  int64_t pack_tokens = 8192;
  bool no_optimizer = false, no_reference = false, checkpointing = false, json = false;
  LoraFlags lora;
  double gpu_gib = 80;
  double context_gib = 0.5;
};

engine::MemoryPlan plan_of(const EstimateOptions& o) {
  if (o.pack_tokens < 1) fail("--pack-tokens {}: a row holds at least one token", o.pack_tokens);
  if (!(o.gpu_gib > 0)) fail("--gpu-gib {}: give the GPU's memory in GiB (80 for an H100, 141 for an H200)", o.gpu_gib);
  if (!(o.context_gib >= 0)) fail("--context-gib {}: give a size in GiB, 0 or more", o.context_gib);
  engine::MemoryPlan p;
  p.state = o.no_optimizer ? engine::EngineState::gradients : engine::EngineState::training;
  p.reference_copy = !o.no_reference;
  p.gradient_checkpointing = o.checkpointing;
  p.lora = o.lora.config();
  p.row_tokens = o.pack_tokens;
  return p;
}

int run_estimate(const EstimateOptions& o) {
  const auto config = o.source.load();
  const engine::MemoryPlan plan = plan_of(o);
  const auto e = engine::estimate_cuda_memory(config, plan);
  const auto budget = static_cast<size_t>((o.gpu_gib - o.context_gib) * kGiB);
  const int64_t longest = engine::longest_row_within(config, plan, budget);
  engine::MemoryPlan recompute = plan;
  recompute.gradient_checkpointing = true;
  const int64_t longest_recompute = o.checkpointing ? longest : engine::longest_row_within(config, recompute, budget);
  const double total = static_cast<double>(e.total()) / kGiB + o.context_gib;
  if (o.json) {
    nlohmann::json j = {{"model", o.source.label()},         {"pack_tokens", o.pack_tokens},
                        {"optimizer", !o.no_optimizer},      {"reference", !o.no_reference},
                        {"gradient_checkpointing", o.checkpointing}, {"lora_r", plan.lora ? plan.lora->r : 0},
                        {"context_gib", o.context_gib},      {"total_gib", total},
                        {"gpu_gib", o.gpu_gib},              {"fits", total <= o.gpu_gib},
                        {"longest_row_tokens", longest},     {"longest_row_tokens_with_recompute", longest_recompute}};
    for (const auto& [what, bytes] : e.parts) j["parts_gib"][what] = static_cast<double>(bytes) / kGiB;
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s: %s, %s, rows of %lld tokens%s\n", o.source.label().c_str(),
              plan.lora ? fmt::format("LoRA r={}", plan.lora->r).c_str()
                        : (o.no_optimizer ? "full fine-tuning without the optimizer step" : "full fine-tuning, AdamW"),
              plan.lora || o.no_reference ? "no reference copy" : "bf16 reference copy",
              static_cast<long long>(o.pack_tokens), o.checkpointing ? ", gradient checkpointing" : "");
  for (const auto& [what, bytes] : e.parts) std::printf("  %-44s %8.2f GiB\n", what.c_str(), static_cast<double>(bytes) / kGiB);
  std::printf("  %-44s %8.2f GiB\n", "CUDA context and libraries (--context-gib)", o.context_gib);
  std::printf("  %-44s %8.2f GiB\n", "total", total);
  if (longest_recompute == 0) {
    std::printf("on a %.0f GiB GPU: does not fit, not even a row of 256 tokens with --gradient-checkpointing: the "
                "model's state is too large for one GPU; lighter: --no-reference (a reference cache), --use-peft, "
                "or ZeRO over several GPUs (docs/distributed.md)\n",
                o.gpu_gib);
    return 0;
  }
  std::printf("on a %.0f GiB GPU: %s; the longest row that fits: %lld tokens", o.gpu_gib,
              total <= o.gpu_gib ? "fits" : "does not fit", static_cast<long long>(longest));
  if (!o.checkpointing) std::printf(" (%lld with --gradient-checkpointing)", static_cast<long long>(longest_recompute));
  std::printf("\n");
  return 0;
}

}  // namespace

Command add_estimate_memory(CLI::App& app) {
  auto o = std::make_shared<EstimateOptions>();
  CLI::App* sub = app.add_subcommand("estimate-memory", "GPU memory of a CUDA run, part by part, and what fits");
  o->source.add_to(*sub, "a config.json", "a model folder (its config.json)");
  sub->add_option("--pack-tokens", o->pack_tokens, "the longest row in tokens: --pack-tokens of the run (default 8192)");
  sub->add_flag("--no-optimizer", o->no_optimizer, "no AdamW state (duet bench --no-optimizer)");
  sub->add_flag("--no-reference", o->no_reference, "no reference copy (a reference cache: --precompute-ref-log-probs)");
  sub->add_flag("--gradient-checkpointing", o->checkpointing, "recompute activations in the backward");
  o->lora.add_to(*sub);
  sub->add_option("--gpu-gib", o->gpu_gib, "the GPU's memory in GiB (default 80: H100; an H200 has 141)");
  sub->add_option("--context-gib", o->context_gib,
                  "added for the CUDA context and libraries' own memory (default 0.5: the most measured on an H200, docs/memory.md)");
  sub->add_flag("--json", o->json, "one JSON object instead of the table");
  return {sub, [o] { return run_estimate(*o); }};
}

}  // namespace duet::cli
