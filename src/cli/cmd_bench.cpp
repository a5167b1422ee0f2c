// duet bench: steady-state DPO training steps of a model (a published
// architecture with random weights, a config.json, or a model folder) on the
// paper's dataset profiles or a real dataset, in each layout, side by side.
// Prints a table, writes JSON lines with --json. See docs/bench.md.
#include <fstream>
#include <memory>
#include <numeric>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/profiles.hpp"
#include "bench/step_bench.hpp"
#include "cli/commands.hpp"
#include "cli/model_options.hpp"
#include "engine/engine.hpp"
#include "engine/lora.hpp"
#include "engine/memory_estimate.hpp"
#include "trainer/training_data.hpp"
#include "util/error.hpp"

namespace duet::cli {

namespace {

struct BenchOptions {
  ModelSource source;
  std::string data, json, device = "cuda";
  std::string profiles = "capybara,hh-rlhf,metamath-dpo,tldr,tulu-helpsteer,ultrafeedback";
  std::string layouts = "paired,paired+packed,shared,shared+packed";
  int64_t pack_tokens = 8192, examples_per_step = 64, examples = 2048;
  int steps = 10, warmup = 3;
  bool no_optimizer = false, no_reference = false, checkpointing = false, breakdown = false;
  LoraFlags lora;
  double peak_tflops = 989.0;
  uint64_t seed = 1;
};

size_t parameter_count(const std::vector<engine::TensorSlot>& slots) {
  return std::accumulate(slots.begin(), slots.end(), size_t{0}, [](size_t a, const auto& s) { return a + s.numel; });
}

bench::StepBenchOptions layout_options(const std::string& name, const BenchOptions& o) {
  bench::StepBenchOptions so;
  const auto plus = name.find('+');
  so.layout = layout::parse_layout(name.substr(0, plus));
  if (plus != std::string::npos && name.substr(plus) != "+packed")
    fail("--layout {}: expected paired, paired+packed, shared or shared+packed", name);
  so.pack_tokens = plus == std::string::npos ? 0 : o.pack_tokens;
  so.examples_per_step = o.examples_per_step, so.steps = o.steps, so.warmup = o.warmup;
  so.optimizer = !o.no_optimizer, so.peak_tflops = o.peak_tflops, so.breakdown = o.breakdown;
  return so;
}

int run_bench(const BenchOptions& o) {
  const auto config = o.source.load();
  // The data first: its errors come before the (slow, large) model set-up.
  std::vector<std::pair<std::string, std::vector<layout::TokenizedExample>>> sets;
  if (!o.data.empty()) {
    trainer::TrainOptions t;
    t.data = o.data, t.model = o.source.model, t.pack_tokens = 0;
    sets.emplace_back(o.data, trainer::load_training_data(t, config).train);
  } else {
    for (const auto& name : split_commas(o.profiles))
      sets.emplace_back(name, bench::synthetic_examples(bench::find_profile(name), o.examples, config.vocab_size, o.seed));
  }
  const auto lora = o.lora.config();
  bench::Trained trained;
  if (lora) trained = {true, static_cast<int64_t>(parameter_count(engine::layout_adapter(config, *lora)))};
  std::vector<bench::StepBenchOptions> layouts;
  for (const auto& l : split_commas(o.layouts)) {
    layouts.push_back(layout_options(l, o));
    layouts.back().trained = trained;
  }
  // Examples longer than a packed row (the profiles' long tail) are left out
  // of every layout, so all layouts time the same examples.
  for (auto& [name, examples] : sets) {
    const auto before = examples.size();
    std::erase_if(examples, [&](const layout::TokenizedExample& e) {
      return layout::unit_tokens(e, layout::Layout::paired) > o.pack_tokens;
    });
    if (examples.size() < before)
      std::fprintf(stderr, "duet bench: %s: %zu of %zu examples are longer than --pack-tokens %lld and left out\n",
                   name.c_str(), before - examples.size(), before, static_cast<long long>(o.pack_tokens));
    if (examples.empty()) fail("{}: no example fits in --pack-tokens {}", name, o.pack_tokens);
  }

  engine::EngineOptions eo;
  eo.device = o.device;
  eo.gradient_checkpointing = o.checkpointing;
  eo.state = o.no_optimizer ? engine::EngineState::gradients : engine::EngineState::training;
  if (o.source.model.empty()) {
    eo.random_model = config, eo.random_seed = o.seed;
  } else {
    eo.model = o.source.model;
  }
  eo.lora = lora;
  eo.lora_seed = o.seed;
  eo.reference_is_start = !o.no_reference && !lora;
  eo.reference_is_base = !o.no_reference && lora;
  auto engine = engine::make_engine(eo);
  // What duet estimate-memory predicts for this run (rows are at most
  // --pack-tokens long), beside each measured peak: a check of the model.
  std::optional<double> estimate_gib;
  if (o.device == "cuda") {
    engine::MemoryPlan plan;
    plan.state = eo.state, plan.reference_copy = eo.reference_is_start, plan.gradient_checkpointing = o.checkpointing;
    plan.lora = lora, plan.row_tokens = o.pack_tokens;
    estimate_gib = static_cast<double>(engine::estimate_cuda_memory(config, plan).total()) / 1073741824.0;
  }
  engine->set_training(true);  // LoRA dropout on, as in training

  std::unique_ptr<std::ofstream> json;
  if (!o.json.empty()) {
    json = std::make_unique<std::ofstream>(o.json, std::ios::app);
    if (!*json) fail("--json {}: cannot open for appending", o.json);
  }
  std::printf("%-16s %-14s %9s %6s %10s %11s %11s %8s %6s %8s %7s\n", "data", "layout", "samples/s", "rows",
              "step ms", "tok/s", "row tok/s", "TFLOP/s", "MFU", "mem GiB", "spread");
  for (const auto& [name, examples] : sets) {
    for (const auto& so : layouts) {
      bench::StepBenchResult r;
      try {
        r = bench::run_step_bench(*engine, examples, so);
      } catch (const OutOfMemory& e) {  // this configuration does not fit: say so, go on with the next
        engine->set_op_timing(false);
        const std::string layout = bench::layout_label(so);
        std::printf("%-16s %-14s out of memory: %s\n", name.c_str(), layout.c_str(), e.what());
        if (json)
          *json << nlohmann::json{{"tool", "duet"}, {"data", name}, {"layout", layout}, {"status", "out of memory"},
                                  {"error", e.what()}}.dump()
                << "\n";
        continue;
      }
      std::printf("%-16s %-14s %9.2f %6lld %10.1f %11.0f %11.0f %8.1f %5.1f%% %8.1f %6.1f%%\n", name.c_str(),
                  r.layout.c_str(), r.samples_per_second, static_cast<long long>(r.rows_per_step),
                  r.step_seconds * 1e3, r.real_tokens_per_second, r.row_tokens_per_second, r.tflops, 100 * r.mfu,
                  r.memory_gib, 100 * r.spread);
      if (!r.breakdown.empty()) {
        std::printf("%-16s %-14s   ms per step:", "", "");
        for (const auto& [kind, sec] : r.breakdown) std::printf(" %s %.1f", kind.c_str(), sec * 1e3);
        std::printf("\n");
      }
      std::fflush(stdout);
      if (json) {
        nlohmann::json j = {{"tool", "duet"},
                            {"arch", o.source.label()},
                            {"data", name},
                            {"layout", r.layout},
                            {"device", o.device},
                            {"optimizer", !o.no_optimizer},
                            {"reference", !o.no_reference},
                            {"gradient_checkpointing", o.checkpointing},
                            {"lora_r", lora ? lora->r : 0},
                            {"examples_per_step", r.examples_per_step},
                            {"rows_per_step", r.rows_per_step},
                            {"pack_tokens", so.pack_tokens},
                            {"step_seconds", r.step_seconds},
                            {"spread", r.spread},
                            {"layout_seconds", r.layout_seconds},
                            {"samples_per_second", r.samples_per_second},
                            {"real_tokens_per_second", r.real_tokens_per_second},
                            {"row_tokens_per_second", r.row_tokens_per_second},
                            {"real_tokens_per_step", r.work.real_tokens},
                            {"row_tokens_per_step", r.work.row_tokens},
                            {"targets_per_step", r.work.targets},
                            {"visible_pairs_per_step", r.work.visible_pairs},
                            {"tflops", r.tflops},
                            {"mfu", r.mfu},
                            {"memory_gib", r.memory_gib}};
        if (estimate_gib) j["memory_estimate_gib"] = *estimate_gib;  // without the CUDA context
        for (const auto& [kind, sec] : r.breakdown) j["breakdown_seconds"][kind] = sec;
        *json << j.dump() << "\n";
        json->flush();
      }
    }
  }
  return 0;
}

}  // namespace

Command add_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* sub = app.add_subcommand("bench", "Time DPO training steps per layout (samples/s, TFLOP/s, MFU, memory)");
  o->source.add_to(*sub, "a config.json (random weights)", "a model folder (its weights)");
  sub->add_option("--profile", o->profiles, "dataset profiles, comma-separated (default: all six)");
  sub->add_option("--data", o->data, "a preference dataset instead of the profiles (pre-tokenized, or with --model's tokenizer)");
  sub->add_option("--layout", o->layouts, "comma-separated: paired, paired+packed, shared, shared+packed (default: all)");
  sub->add_option("--pack-tokens", o->pack_tokens, "row capacity of the packed layouts (default 8192)");
  sub->add_option("--examples-per-step", o->examples_per_step, "examples (pairs) per optimizer step (default 64)");
  sub->add_option("--examples", o->examples, "synthetic examples drawn per profile (default 2048)");
  sub->add_option("--steps", o->steps, "timed steps (default 10)");
  sub->add_option("--warmup", o->warmup, "untimed steps first (default 3)");
  sub->add_flag("--no-optimizer", o->no_optimizer, "leave out the optimizer step (and its memory), as the paper's 8B runs");
  sub->add_flag("--no-reference", o->no_reference, "no reference forward (as with a reference cache)");
  sub->add_flag("--gradient-checkpointing", o->checkpointing, "recompute activations in the backward");
  sub->add_flag("--breakdown", o->breakdown, "time each kind of op (matmul, attention, LM head, element-wise, optimizer, host)");
  o->lora.add_to(*sub);
  sub->add_option("--device", o->device, "cuda (default) or cpu");
  sub->add_option("--peak-tflops", o->peak_tflops, "the device's dense bf16 peak for MFU (default 989: H100/H200 SXM)");
  sub->add_option("--seed", o->seed, "seed of the weights and the synthetic data (default 1)");
  sub->add_option("--json", o->json, "append one JSON line per configuration to this file");
  return {sub, [o] { return run_bench(*o); }};
}

}  // namespace duet::cli
