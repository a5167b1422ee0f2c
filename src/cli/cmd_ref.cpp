// duet ref: reference log-probs computed once, with prefix sharing and
// packing, into a cache that `duet train --ref-cache` reads instead of loading
// reference weights.
#include <memory>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "dist/launch.hpp"
#include "engine/engine.hpp"
#include "trainer/reference_cache.hpp"
#include "trainer/training_data.hpp"
#include "util/error.hpp"

namespace duet::cli {

namespace {

struct RefOptions {
  trainer::TrainOptions train;  // the data options must be those of the training run
  std::string out;
  int64_t pack_tokens = 2048;
  std::string on_error = "fail";
  std::string device = "auto";
};

int run_ref(RefOptions& o) {
  dist::require_one_process("duet ref");
  if (o.out.empty()) fail("--out is required (the cache file to write)");
  if (o.pack_tokens <= 0) fail("--pack-tokens must be positive");
  model::require_model_folder(o.train.model, "--model");
  auto config = model::load_config(o.train.model);
  // Prepare with the training run's truncation settings; packing capacity
  // only matters for speed here.
  o.train.pack_tokens = 0;
  o.train.skip_bad_examples = o.on_error == "skip";
  auto data = trainer::load_training_data(o.train, config);
  // Weights after the data: data errors come before the (slow, large) load.
  engine::EngineOptions eo;
  eo.device = o.device;  // make_engine resolves auto
  eo.state = engine::EngineState::scoring;  // weights only: no gradients, no optimizer state
  eo.model = o.train.model;
  auto reference = engine::make_engine(eo);
  trainer::ReferenceCache::build(o.out, *reference, data.train, o.pack_tokens);
  std::fprintf(stderr, "duet ref: %zu examples scored, cache written to %s\n", data.train.size(), o.out.c_str());
  return 0;
}

}  // namespace

Command add_ref(CLI::App& app) {
  auto o = std::make_shared<RefOptions>();
  CLI::App* sub = app.add_subcommand("ref", "Precompute reference log-probs once for duet train --ref-cache");
  sub->add_option("--model", o->train.model, "reference model folder")->required();
  sub->add_option("--data", o->train.data, "preference dataset (the one duet train will read)")->required();
  sub->add_option("--out", o->out, "cache file to write")->required();
  sub->add_option("--tokenizer", o->train.tokenizer, "tokenizer.json or folder (default: the model folder)");
  sub->add_option("--max-length", o->train.max_length, "as duet train (default 1024)");
  sub->add_option("--max-prompt-length", o->train.max_prompt_length, "as duet train (default: min(512, max-length / 2))");
  sub->add_option("--chat-template", o->train.chat_template, "as duet train");
  sub->add_option("--on-error", o->on_error, "fail (default) or skip, as duet train")->check(CLI::IsMember({"fail", "skip"}));
  sub->add_option("--pack-tokens", o->pack_tokens, "row capacity used for scoring (default 2048)");
  sub->add_option("--threads", o->train.threads, "CPU threads for data preparation (0: all)");
  sub->add_option("--device", o->device,
                  "auto (default: cuda where a GPU it runs on is visible, else cpu), cpu (the fp32 reference "
                  "engine) or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  return {sub, [o] { return run_ref(*o); }};
}

}  // namespace duet::cli
