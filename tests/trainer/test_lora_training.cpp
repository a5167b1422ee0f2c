// duet train --use-peft end to end: the first step's policy is the reference
// (B = 0), the output and checkpoints are PEFT adapter folders, the merged
// model scores as the adapter, a resumed run ends bit for bit as the whole
// run, training starts from an existing adapter, and bad LoRA options are
// refused with one line.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/engine.hpp"
#include "engine/lora_files.hpp"
#include "layout/pack_rows.hpp"
#include "trainer/reference_cache.hpp"
#include "trainer/trainer.hpp"
#include "trainer/training_data.hpp"
#include "training_setup.hpp"
#include "util/error.hpp"

namespace duet::trainer {
namespace {

using namespace testing;

TrainOptions lora_options(const TrainingSetup& setup, const std::string& out) {
  TrainOptions o = base_options(setup.model, setup.data, setup.tmp.path / out);
  o.use_peft = true;
  o.lora_r = 4, o.lora_alpha = 8, o.lora_dropout = 0.1;
  o.lora_target_modules = {"all-linear"};
  o.learning_rate = 1e-2;
  return o;
}

std::string bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every response's log-prob of the run's examples under an engine.
std::vector<double> scores(engine::Engine& engine, const TrainOptions& o) {
  const TrainingData data = load_training_data(o, engine.config());
  std::vector<double> out;
  for (const auto& row : layout::pack_examples(data.train, layout::Layout::shared, 256, 0))
    for (const auto& r : engine.score_policy(engine::make_batch(row))) out.push_back(r.logp);
  return out;
}

TEST(LoraTraining, WritesAPeftAdapterWhoseMergeScoresTheSame) {
  TrainingSetup setup(24);
  SCOPED_TRACE(setup.trace());
  TrainOptions o = lora_options(setup, "run");
  o.max_steps = 3, o.merge_adapter = true;
  ASSERT_EQ(Trainer(o).run(), 0);
  // Step 1: B = 0, so the policy is exactly the reference (the base): loss ln 2, margins 0.
  const auto steps = read_metrics(o.out, "loss");
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0]["loss"].get<double>(), std::log(2.0));
  EXPECT_EQ(steps[0]["rewards/margins"].get<double>(), 0.0);
  EXPECT_NE(steps[2]["loss"].get<double>(), std::log(2.0));
  for (const char* file : {"adapter_config.json", "adapter_model.safetensors"}) {
    EXPECT_TRUE(fs::exists(o.out / file)) << file;
    EXPECT_TRUE(fs::exists(o.out / "checkpoint-3" / file)) << file;
  }
  EXPECT_FALSE(fs::exists(o.out / "model.safetensors"));  // an adapter folder, as TRL + PEFT write it
  EXPECT_FALSE(fs::exists(o.out / "checkpoint-3" / "model.safetensors"));

  engine::EngineOptions adapted;
  adapted.model = setup.model;
  adapted.lora = engine::read_adapter_config(o.out);
  adapted.adapter = o.out;
  engine::EngineOptions merged, base;
  merged.model = o.out / "merged";
  base.model = setup.model;
  const auto a = scores(*engine::make_engine(adapted), o), m = scores(*engine::make_engine(merged), o),
             b = scores(*engine::make_engine(base), o);
  ASSERT_EQ(a.size(), m.size());
  double moved = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_NEAR(m[i], a[i], 1e-5 * std::abs(a[i])) << "response " << i;
    moved = std::max(moved, std::abs(a[i] - b[i]));
  }
  EXPECT_GT(moved, 1e-4) << "training must have changed the adapter's scores";
}

TEST(LoraTraining, ResumedRunEndsWithTheSameAdapterAndMomentsBitForBit) {
  TrainingSetup setup(30);
  SCOPED_TRACE(setup.trace());
  TrainOptions whole = lora_options(setup, "whole");
  whole.max_steps = 6, whole.save_steps = 2;
  ASSERT_EQ(Trainer(whole).run(), 0);
  TrainOptions resumed = whole;
  resumed.out = setup.tmp.path / "resumed";
  resumed.resume_from_checkpoint = whole.out / "checkpoint-2";
  ASSERT_EQ(Trainer(resumed).run(), 0);
  for (const char* file : {"optimizer.safetensors", "adapter_model.safetensors", "adapter_config.json"}) {
    const std::string a = bytes(whole.out / "checkpoint-6" / file), b = bytes(resumed.out / "checkpoint-6" / file);
    ASSERT_FALSE(a.empty()) << file;
    EXPECT_TRUE(a == b) << file << " differs after resume";
  }
  // Another LoRA rank, or no LoRA, is another run.
  TrainOptions other_rank = resumed, full = base_options(setup.model, setup.data, setup.tmp.path / "full");
  other_rank.out = setup.tmp.path / "other";
  other_rank.lora_r = 8;
  full.resume_from_checkpoint = resumed.resume_from_checkpoint;
  const std::pair<TrainOptions, const char*> refused[] = {{other_rank, "lora_r 4 on"},
                                                          {full, "written by a --use-peft run"}};
  for (const auto& [options, expected] : refused) {
    try {
      Trainer t(options);
      ADD_FAILURE() << "accepted; expected: " << expected;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  }
}

TEST(LoraTraining, StartsFromAnExistingAdapter) {
  TrainingSetup setup(16);
  SCOPED_TRACE(setup.trace());
  TrainOptions first = lora_options(setup, "first");
  first.max_steps = 2;
  ASSERT_EQ(Trainer(first).run(), 0);
  TrainOptions second = base_options(setup.model, setup.data, setup.tmp.path / "second");
  second.use_peft = true;
  second.adapter = first.out;
  second.learning_rate = 0;  // the adapter passes through unchanged
  second.max_steps = 1;
  ASSERT_EQ(Trainer(second).run(), 0);
  const auto steps = read_metrics(second.out, "loss");
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_NE(steps[0]["loss"].get<double>(), std::log(2.0)) << "the loaded adapter must be applied";
  const engine::LoraConfig a = engine::read_adapter_config(first.out), b = engine::read_adapter_config(second.out);
  EXPECT_EQ(a.r, b.r);
  EXPECT_EQ(a.target_modules, b.target_modules);
  const auto model = engine::make_engine([&] {
    engine::EngineOptions o;
    o.model = setup.model;
    return o;
  }());
  engine::ParameterSet<float> x(engine::layout_adapter(model->config(), a)), y(x.slots());
  engine::load_adapter_weights(first.out, x);
  engine::load_adapter_weights(second.out, y);
  EXPECT_TRUE(std::equal(x.values().begin(), x.values().end(), y.values().begin(), y.values().end()));
}

// The reference of a LoRA run is the base: a duet ref cache of --model gives
// the live run's curve, and so does --precompute-ref-log-probs.
TEST(LoraTraining, ReferenceCacheOfTheBaseGivesTheSameRun) {
  TrainingSetup setup(24);
  SCOPED_TRACE(setup.trace());
  TrainOptions live = lora_options(setup, "live");
  live.max_steps = 3;
  ASSERT_EQ(Trainer(live).run(), 0);
  engine::EngineOptions eo;
  eo.model = setup.model;
  auto reference = engine::make_engine(eo);
  ReferenceCache::build(setup.tmp.path / "ref.jsonl", *reference, load_training_data(live, reference->config()).train,
                        64);
  TrainOptions cached = live, precomputed = live;
  cached.out = setup.tmp.path / "cached";
  cached.ref_cache = setup.tmp.path / "ref.jsonl";
  precomputed.out = setup.tmp.path / "precomputed";
  precomputed.precompute_ref_log_probs = true;
  ASSERT_EQ(Trainer(cached).run(), 0);
  ASSERT_EQ(Trainer(precomputed).run(), 0);
  const auto a = read_metrics(live.out, "loss");
  ASSERT_EQ(a.size(), 3u);
  for (const auto& other : {cached.out, precomputed.out}) {
    const auto b = read_metrics(other, "loss");
    ASSERT_EQ(b.size(), a.size()) << other;
    // The cache was scored in another layout: equal up to fp32 summation order.
    for (size_t s = 0; s < a.size(); ++s)
      EXPECT_NEAR(b[s]["loss"].get<double>(), a[s]["loss"].get<double>(), 1e-5) << other << " step " << s + 1;
  }
}

// A checkpoint written before the LoRA options existed resumes without them,
// and a run that turns LoRA on is still told apart.
TEST(LoraTraining, OptionsNewerThanACheckpointCountAsTheirDefaults) {
  nlohmann::json saved = to_json(TrainOptions{});
  for (const char* key : {"use_peft", "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "use_rslora"})
    saved.erase(key);
  TrainOptions now;
  EXPECT_TRUE(changed_run_options(saved, to_json(now), {}).empty());
  now.use_peft = true;
  const auto changes = changed_run_options(saved, to_json(now), {});
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0], "use_peft: false -> true");
}

TEST(LoraTraining, RefusesInconsistentOptionsWithOneLine) {
  TrainingSetup setup(4);
  const TrainOptions good = lora_options(setup, "out");
  EXPECT_NO_THROW(good.validate());
  struct Case {
    std::function<void(TrainOptions&)> edit;
    const char* expected;
  };
  const Case cases[] = {
      {[](TrainOptions& o) { o.use_peft = false; }, "--lora-r configures a LoRA adapter: add --use-peft"},
      {[](TrainOptions& o) { o.lora_r = 0; }, "--lora-r must be a positive integer"},
      {[](TrainOptions& o) { o.lora_alpha = -1; }, "--lora-alpha must be a positive number"},
      {[](TrainOptions& o) { o.lora_dropout = 1; }, "--lora-dropout must be in [0, 1)"},
      {[](TrainOptions& o) { o.lora_target_modules = {"q_proj", "lm_head"}; }, "'lm_head' is not a linear layer"},
      {[](TrainOptions& o) { o.ref_model = o.model; }, "--ref-model with --use-peft"},
      {[](TrainOptions& o) { o.adapter = o.model; }, "--lora-r with --adapter"},
      {[](TrainOptions& o) {
         o = base_options(o.model, o.data, o.out);
         o.merge_adapter = true;
       },
       "--merge-adapter merges a LoRA adapter: add --use-peft"},
  };
  for (const Case& c : cases) {
    TrainOptions o = good;
    c.edit(o);
    try {
      o.validate();
      ADD_FAILURE() << "accepted; expected: " << c.expected;
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(c.expected), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  }
}

}  // namespace
}  // namespace duet::trainer
