// duet estimate-memory: the GPU memory a CUDA run will take, part by part,
// before renting the GPU: the engine's own byte counts (engine/memory_estimate),
// for rows of --pack-tokens or for the longest row the steps of a --data file
// can bring, and the longest row that fits a GPU of a given size. See
// docs/memory.md.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "engine/memory_estimate.hpp"
#include "layout/step_batcher.hpp"
#include "trainer/training_data.hpp"
#include "util/error.hpp"

namespace duet::cli {

namespace {

constexpr double kGiB = 1073741824.0;

struct EstimateOptions {
  ModelSource source;
  std::optional<int64_t> pack_tokens;  // default: 8192; with --data duet train's (0: unpacked)
  // --data: rows as duet train lays them out (its defaults below).
  std::string data, layout = "shared";
  int64_t batch_size = 8;
  int64_t max_length = data::kDefaultMaxLength, max_prompt_length = data::kAutoMaxPromptLength;
  bool no_optimizer = false, no_reference = false, checkpointing = false, json = false;
  LoraFlags lora;
  double gpu_gib = 80;
  double context_gib = 0.5;
  int gpus = 1, zero_stage = 0;  // data parallel: per GPU
};

// The longest row (tokens, targets) any step of --data can bring, as duet
// train reads, truncates and packs it (StepBatcher::row_bound).
layout::RowBound rows_of_data(const EstimateOptions& o, const model::ModelConfig& config) {
  trainer::TrainOptions t;
  t.data = o.data, t.model = o.source.model;
  t.layout = layout::parse_layout(o.layout);
  t.pack_tokens = o.pack_tokens.value_or(0), t.batch_size = o.batch_size;
  t.max_length = o.max_length, t.max_prompt_length = o.max_prompt_length;
  if (t.batch_size < 1) fail("--batch-size {}: examples per optimizer step, at least 1", t.batch_size);
  std::vector<layout::ExampleShape> shapes;
  for (const auto& e : trainer::load_training_data(t, config).train) shapes.push_back(layout::shape_of(e));
  return layout::StepBatcher(shapes, t.batcher_options(1)).row_bound();
}

engine::MemoryPlan plan_of(const EstimateOptions& o, const model::ModelConfig& config) {
  engine::MemoryPlan p;
  if (!o.data.empty()) {
    const layout::RowBound rows = rows_of_data(o, config);
    p.row_tokens = rows.tokens, p.row_targets = rows.targets;
  } else {
    p.row_tokens = o.pack_tokens.value_or(8192);
    if (p.row_tokens < 1) fail("--pack-tokens {}: a row holds at least one token (or give --data)", p.row_tokens);
  }
  p.state = o.no_optimizer ? engine::EngineState::gradients : engine::EngineState::training;
  p.reference_copy = !o.no_reference;
  p.gradient_checkpointing = o.checkpointing;
  p.lora = o.lora.config();
  p.ranks = o.gpus, p.zero_stage = o.zero_stage;
  return p;
}

std::string describe(const EstimateOptions& o, const engine::MemoryPlan& plan) {
  std::string s = o.source.label() + ": ";
  s += plan.lora ? fmt::format("LoRA r={}", plan.lora->r)
                 : (o.no_optimizer ? "full fine-tuning without the optimizer step" : "full fine-tuning, AdamW");
  s += plan.lora || o.no_reference ? ", no reference copy" : ", bf16 reference copy";
  s += fmt::format(", rows of {} tokens", plan.row_tokens);
  if (!o.data.empty()) s += fmt::format(" ({} targets: the longest any step of {} can bring)", plan.row_targets, o.data);
  if (o.checkpointing) s += ", gradient checkpointing";
  if (o.gpus > 1 || o.zero_stage > 0) s += fmt::format(", per GPU of {} at ZeRO stage {}", o.gpus, o.zero_stage);
  return s;
}

int run_estimate(const EstimateOptions& o) {
  if (!(o.gpu_gib > 0)) fail("--gpu-gib {}: give the GPU's memory in GiB (80 for an H100, 141 for an H200)", o.gpu_gib);
  if (!(o.context_gib >= 0)) fail("--context-gib {}: give a size in GiB, 0 or more", o.context_gib);
  const auto config = o.source.load();
  const engine::MemoryPlan plan = plan_of(o, config);
  const auto e = engine::estimate_cuda_memory(config, plan);
  const auto budget = static_cast<size_t>((o.gpu_gib - o.context_gib) * kGiB);
  const int64_t longest = engine::longest_row_within(config, plan, budget);
  engine::MemoryPlan recompute = plan;
  recompute.gradient_checkpointing = true;
  const int64_t longest_recompute = o.checkpointing ? longest : engine::longest_row_within(config, recompute, budget);
  const double total = static_cast<double>(e.total()) / kGiB + o.context_gib;
  if (o.json) {
    nlohmann::json j = {{"model", o.source.label()},
                        {"row_tokens", plan.row_tokens},
                        {"row_targets", plan.row_targets < 0 ? plan.row_tokens : plan.row_targets},
                        {"optimizer", !o.no_optimizer},
                        {"reference", !o.no_reference},
                        {"gradient_checkpointing", o.checkpointing},
                        {"lora_r", plan.lora ? plan.lora->r : 0},
                        {"gpus", plan.ranks},
                        {"zero_stage", plan.zero_stage},
                        {"context_gib", o.context_gib},
                        {"total_gib", total},
                        {"gpu_gib", o.gpu_gib},
                        {"fits", total <= o.gpu_gib},
                        {"longest_row_tokens", longest},
                        {"longest_row_tokens_with_recompute", longest_recompute}};
    for (const auto& [what, bytes] : e.parts) j["parts_gib"][what] = static_cast<double>(bytes) / kGiB;
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s\n", describe(o, plan).c_str());
  const std::string context = "CUDA context and libraries (--context-gib)";
  int width = static_cast<int>(context.size());
  for (const auto& part : e.parts) width = std::max(width, static_cast<int>(part.first.size()));
  for (const auto& [what, bytes] : e.parts)
    std::printf("  %-*s %8.2f GiB\n", width, what.c_str(), static_cast<double>(bytes) / kGiB);
  std::printf("  %-*s %8.2f GiB\n", width, context.c_str(), o.context_gib);
  std::printf("  %-*s %8.2f GiB\n", width, "total", total);
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
  o->source.add_to(*sub, "a config.json", "a model folder (its config.json and tokenizer)");
  sub->add_option("--pack-tokens", o->pack_tokens,
                  "row capacity: the longest row (default 8192); with --data as duet train's (default 0: unpacked)");
  sub->add_option("--data", o->data,
                  "a preference dataset: rows as duet train lays it out (pre-tokenized, or with --model's tokenizer)");
  sub->add_option("--layout", o->layout, "with --data: shared (default) or paired");
  sub->add_option("--batch-size", o->batch_size, "with --data: examples per optimizer step (default 8)");
  sub->add_option("--max-length", o->max_length, "with --data: truncation, as duet train");
  sub->add_option("--max-prompt-length", o->max_prompt_length, "with --data: truncation, as duet train");
  sub->add_flag("--no-optimizer", o->no_optimizer, "no AdamW state (duet bench --no-optimizer)");
  sub->add_flag("--no-reference", o->no_reference, "no reference copy (a reference cache: --precompute-ref-log-probs)");
  sub->add_flag("--gradient-checkpointing", o->checkpointing, "recompute activations in the backward");
  o->lora.add_to(*sub);
  sub->add_option("--gpus", o->gpus, "data-parallel GPUs: the estimate is per GPU (default 1)");
  sub->add_option("--zero-stage", o->zero_stage,
                  "ZeRO stage (duet train's --zero-stage): 1 keeps a 1/--gpus shard of the fp32 master and AdamW "
                  "moments on each GPU, 2 also of the fp32 gradients, 3 also of the bf16 weights and reference (default 0)");
  sub->add_option("--gpu-gib", o->gpu_gib, "the GPU's memory in GiB (default 80: H100; an H200 has 141)");
  sub->add_option("--context-gib", o->context_gib,
                  "added for the CUDA context and libraries' own memory (default 0.5: the most measured on an H200, "
                  "docs/memory.md)");
  sub->add_flag("--json", o->json, "one JSON object instead of the table");
  return {sub, [o] { return run_estimate(*o); }};
}

}  // namespace duet::cli
