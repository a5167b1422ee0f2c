// duet bench: steady-state DPO training steps of a model (a published
// architecture with random weights, a config.json, or a model folder) on the
// paper's dataset profiles or a real dataset, in each layout, side by side.
// Prints a table, writes JSON lines with --json. See docs/bench.md.
#include <fstream>
#include <memory>
#include <numeric>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench/profiles.hpp"
#include "bench/step_bench.hpp"
#include "cli/commands.hpp"
#include "engine/engine.hpp"
#include "engine/lora.hpp"
#include "model/presets.hpp"
#include "trainer/training_data.hpp"
#include "util/error.hpp"

namespace duet::cli {

namespace {

struct BenchOptions {
  std::string arch, config, model, data, json, device = "cuda";
  std::string profiles = "capybara,hh-rlhf,metamath-dpo,tldr,tulu-helpsteer,ultrafeedback";
  std::string layouts = "paired,paired+packed,shared,shared+packed";
  int64_t pack_tokens = 8192, examples_per_step = 64, examples = 2048;
  int steps = 10, warmup = 3;
  bool no_optimizer = false, no_reference = false, checkpointing = false, breakdown = false;
  bool use_peft = false;  // LoRA (TRL/PEFT names): a frozen base, the adapter trained, the reference = adapter off
  int64_t lora_r = 16;
  double lora_alpha = 32, lora_dropout = 0.05;
  std::string lora_target_modules = "all-linear";
  double peak_tflops = 989.0;
  uint64_t seed = 1;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

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

std::optional<engine::LoraConfig> bench_lora(const BenchOptions& o) {
  if (!o.use_peft) return std::nullopt;
  engine::LoraConfig l;
  l.r = o.lora_r, l.alpha = o.lora_alpha, l.dropout = o.lora_dropout;
  l.target_modules = engine::parse_target_modules(split(o.lora_target_modules));
  l.validate();
  return l;
}

model::ModelConfig bench_config(const BenchOptions& o) {
  if (int(!o.arch.empty()) + int(!o.config.empty()) + int(!o.model.empty()) != 1)
    fail("give exactly one of --arch (a preset), --config (a config.json) or --model (a model folder)");
  if (!o.arch.empty()) return model::preset_config(o.arch);
  return model::load_config(o.config.empty() ? o.model : o.config);
}

int run_bench(const BenchOptions& o) {
  const auto config = bench_config(o);
  // The data first: its errors come before the (slow, large) model set-up.
  std::vector<std::pair<std::string, std::vector<layout::TokenizedExample>>> sets;
  if (!o.data.empty()) {
    trainer::TrainOptions t;
    t.data = o.data, t.model = o.model, t.pack_tokens = 0;
    sets.emplace_back(o.data, trainer::load_training_data(t, config).train);
  } else {
    for (const auto& name : split(o.profiles))
      sets.emplace_back(name, bench::synthetic_examples(bench::find_profile(name), o.examples, config.vocab_size, o.seed));
  }
  const auto lora = bench_lora(o);
  bench::Trained trained;
  if (lora) trained = {true, static_cast<int64_t>(parameter_count(engine::layout_adapter(config, *lora)))};
  std::vector<bench::StepBenchOptions> layouts;
  for (const auto& l : split(o.layouts)) {
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
  if (o.model.empty()) {
    eo.random_model = config, eo.random_seed = o.seed;
  } else {
    eo.model = o.model;
  }
  eo.lora = lora;
  eo.lora_seed = o.seed;
  eo.reference_is_start = !o.no_reference && !lora;
  eo.reference_is_base = !o.no_reference && lora;
  auto engine = engine::make_engine(eo);
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
                            {"arch", o.arch.empty() ? (o.model.empty() ? o.config : o.model) : o.arch},
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
  sub->add_option("--arch", o->arch, "a published architecture with random weights: " + [] {
    std::string names;
    for (const auto& n : model::preset_names()) names += (names.empty() ? "" : ", ") + n;
    return names;
  }());
  sub->add_option("--config", o->config, "a config.json (random weights)");
  sub->add_option("--model", o->model, "a model folder (its weights)");
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
  sub->add_flag("--use-peft", o->use_peft, "LoRA: train an adapter on the frozen model (reference = adapter off)");
  sub->add_option("--lora-r", o->lora_r, "LoRA rank (default 16)");
  sub->add_option("--lora-alpha", o->lora_alpha, "LoRA alpha (default 32)");
  sub->add_option("--lora-dropout", o->lora_dropout, "LoRA dropout (default 0.05, TRL's)");
  sub->add_option("--lora-target-modules", o->lora_target_modules,
                  "adapted layers, comma-separated, or all-linear (default)");
  sub->add_option("--device", o->device, "cuda (default) or cpu");
  sub->add_option("--peak-tflops", o->peak_tflops, "the device's dense bf16 peak for MFU (default 989: H100/H200 SXM)");
  sub->add_option("--seed", o->seed, "seed of the weights and the synthetic data (default 1)");
  sub->add_option("--json", o->json, "append one JSON line per configuration to this file");
  return {sub, [o] { return run_bench(*o); }};
}

}  // namespace duet::cli
