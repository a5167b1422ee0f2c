// End-to-end training on a learnable synthetic preference task with a tiny
// random model: DPO learns it (held-out accuracy >= 0.95), the paired, shared
// and shared+packed layouts give the same loss curve, and a resumed run
// continues with the same losses as an uninterrupted one.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include <nlohmann/json.hpp>

#include "common/preference_task.hpp"
#include "common/seeds.hpp"
#include "engine/parameters.hpp"
#include "model/config.hpp"
#include "util/error.hpp"
#include "trainer/reference_cache.hpp"
#include "trainer/trainer.hpp"
#include "trainer/training_data.hpp"
#include "training_setup.hpp"

namespace duet::trainer {
namespace {

namespace fs = std::filesystem;

using ::duet::test::fresh_seed;
using namespace testing;


TEST(Training, DpoLearnsASyntheticPreference) {
  TrainingSetup setup(160);
  SCOPED_TRACE(setup.trace());
  const TempDir& tmp = setup.tmp;
  TrainOptions o = base_options(tmp.path / "model", tmp.path / "data.jsonl", tmp.path / "out");
  o.eval_fraction = 0.25;
  o.max_steps = 40;
  o.pack_tokens = 96;
  ASSERT_EQ(Trainer(o).run(), 0);
  auto eval = read_metrics(o.out, "eval_loss");
  ASSERT_FALSE(eval.empty());
  EXPECT_GE(eval.back()["eval_rewards/accuracies"].get<double>(), 0.95);
  auto train = read_metrics(o.out, "loss");
  ASSERT_EQ(train.size(), 40u);
  // Step 1: the policy is the reference, so the DPO loss is log 2 exactly.
  EXPECT_NEAR(train.front()["loss"].get<double>(), std::log(2.0), 1e-6);
  EXPECT_LT(train.back()["loss"].get<double>(), 0.3);
  // The output folder is a model folder again, with a last checkpoint.
  EXPECT_TRUE(fs::exists(o.out / "model.safetensors"));
  EXPECT_TRUE(fs::exists(o.out / "config.json"));
  EXPECT_TRUE(fs::exists(o.out / "checkpoint-40" / "optimizer.safetensors"));
}

TEST(Training, LayoutsGiveTheSameLossCurve) {
  TrainingSetup setup(64);
  SCOPED_TRACE(setup.trace());
  const TempDir& tmp = setup.tmp;
  struct Run {
    layout::Layout layout;
    int64_t pack;
    const char* name;
  };
  std::vector<std::vector<nlohmann::json>> curves;
  for (const Run& r : {Run{layout::Layout::paired, 0, "paired"}, Run{layout::Layout::shared, 0, "shared"},
                       Run{layout::Layout::shared, 100, "packed"}}) {
    TrainOptions o = base_options(tmp.path / "model", tmp.path / "data.jsonl", tmp.path / r.name);
    o.layout = r.layout, o.pack_tokens = r.pack, o.max_steps = 10;
    ASSERT_EQ(Trainer(o).run(), 0);
    curves.push_back(read_metrics(o.out, "loss"));
  }
  for (size_t k = 1; k < curves.size(); ++k) {
    ASSERT_EQ(curves[k].size(), curves[0].size());
    for (size_t s = 0; s < curves[0].size(); ++s) {
      double a = curves[0][s]["loss"], b = curves[k][s]["loss"];
      EXPECT_NEAR(b, a, 1e-4 * std::abs(a)) << "run " << k << " step " << s + 1;
      for (const char* key : {"logits/chosen", "logits/rejected"}) {
        ASSERT_TRUE(curves[k][s].contains(key)) << key;
        double la = curves[0][s][key], lb = curves[k][s][key];
        EXPECT_NEAR(lb, la, 1e-5 * (1 + std::abs(la))) << key << ", run " << k << " step " << s + 1;
      }
      double ga = curves[0][s]["grad_norm"], gb = curves[k][s]["grad_norm"];
      EXPECT_NEAR(gb, ga, 1e-4 * std::abs(ga)) << "grad_norm, run " << k << " step " << s + 1;
    }
  }
}

TEST(Training, LoggingStepsLogTheWindowMeanAndTheRunEndsWithASummary) {
  TrainingSetup setup(32);
  SCOPED_TRACE(setup.trace());
  TrainOptions every = base_options(setup.model, setup.data, setup.tmp.path / "every");
  every.max_steps = 5;
  ASSERT_EQ(Trainer(every).run(), 0);
  TrainOptions windowed = every;
  windowed.out = setup.tmp.path / "windowed";
  windowed.logging_steps = 2;
  ASSERT_EQ(Trainer(windowed).run(), 0);
  auto a = read_metrics(every.out, "loss"), b = read_metrics(windowed.out, "loss");
  ASSERT_EQ(a.size(), 5u);
  ASSERT_EQ(b.size(), 3u);  // steps 2, 4 and the last, 5
  const std::pair<size_t, size_t> windows[] = {{0, 2}, {2, 4}, {4, 5}};
  for (size_t w = 0; w < 3; ++w) {
    SCOPED_TRACE("window " + std::to_string(w));
    EXPECT_EQ(b[w]["step"], a[windows[w].second - 1]["step"]);
    EXPECT_EQ(b[w]["learning_rate"], a[windows[w].second - 1]["learning_rate"]);
    for (const char* key : {"loss", "grad_norm", "rewards/margins", "logps/rejected"}) {
      double mean = 0;
      for (size_t s = windows[w].first; s < windows[w].second; ++s) mean += a[s][key].get<double>();
      mean /= static_cast<double>(windows[w].second - windows[w].first);
      EXPECT_NEAR(b[w][key].get<double>(), mean, 1e-12 * (1 + std::abs(mean))) << key;
    }
  }
  std::ifstream in(every.out / "train_results.json");
  const auto summary = nlohmann::json::parse(in);
  double loss = 0;
  for (const auto& r : a) loss += r["loss"].get<double>();
  EXPECT_NEAR(summary["train_loss"].get<double>(), loss / 5, 1e-12);
  EXPECT_GT(summary["train_runtime"].get<double>(), 0);
  EXPECT_GT(summary["train_samples_per_second"].get<double>(), 0);
  EXPECT_EQ(summary["global_step"], 5);
}

// Every loss through the trainer, in the paired layout (one example per row)
// and shared + packed (several per row): the same curve. For the losses that
// couple the step's pairs (aot, aot_unpaired, bco_pair) this checks that each
// row's share of the gradient is right; reference-free ones load no reference.
class EveryLoss : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryLoss, TrainsTheSameCurveInEveryLayout) {
  TrainingSetup setup(40);
  SCOPED_TRACE(setup.trace());
  std::vector<std::vector<nlohmann::json>> curves;
  for (const auto& [lay, pack] : {std::pair{layout::Layout::paired, int64_t{0}}, std::pair{layout::Layout::shared, int64_t{100}}}) {
    TrainOptions o = base_options(setup.model, setup.data, setup.tmp.path / ("out" + std::to_string(pack)));
    o.layout = lay, o.pack_tokens = pack, o.max_steps = 3;
    nlohmann::json loss = {{"loss_type", GetParam()}, {"beta", 0.5}};
    if (GetParam() == "sigmoid,sft") loss["loss_weights"] = {1.0, 0.3};
    if (GetParam() == "exo_pair") loss["label_smoothing"] = 1e-3;
    o.loss = loss::config_from_json(loss);
    ASSERT_EQ(Trainer(o).run(), 0);
    curves.push_back(read_metrics(o.out, "loss"));
  }
  ASSERT_EQ(curves[0].size(), 3u);
  ASSERT_EQ(curves[1].size(), 3u);
  for (size_t s = 0; s < 3; ++s) {
    for (const auto& [key, value] : curves[0][s].items()) {
      if (!value.is_number_float() || key.ends_with("_per_second")) continue;
      ASSERT_TRUE(std::isfinite(value.get<double>())) << key << " step " << s + 1;
      // fp32 sums in another order: relative 1e-4, and an absolute floor for
      // rewards, which are small differences of large log-probs. After the
      // first update 1e-3: AdamW's early steps move each weight by about
      // lr * sign(gradient), so an element whose gradient is at rounding
      // level may move the other way in the other layout, and the runs part
      // by more than the order of a sum (seen: 1.5e-4 at step 3 for sppo_hard).
      const double a = value, b = curves[1][s][key], tol = s == 0 ? 1e-4 : 1e-3;
      EXPECT_NEAR(b, a, tol * std::abs(a) + tol) << key << " step " << s + 1;
    }
    EXPECT_GT(curves[0][s]["grad_norm"].get<double>(), 0) << "step " << s + 1;
  }
}

INSTANTIATE_TEST_SUITE_P(Losses, EveryLoss,
                         ::testing::Values("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair",
                                           "sppo_hard", "aot", "aot_unpaired", "apo_zero", "apo_down", "discopop",
                                           "sft", "sigmoid_norm", "simpo", "orpo", "sigmoid,sft"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == ',') c = '_';
                           return n;
                         });

// Resume restores everything: the weights and both AdamW moments of the last
// checkpoint are bit-for-bit those of the uninterrupted run, also for a loss
// with state (bco_pair's running mean of the rewards).
TEST(Training, ResumedRunEndsWithTheSameWeightsAndMomentsBitForBit) {
  TrainingSetup setup(30);
  SCOPED_TRACE(setup.trace());
  for (const char* loss_type : {"sigmoid", "bco_pair"}) {
    SCOPED_TRACE(loss_type);
    TrainOptions whole = base_options(setup.model, setup.data, setup.tmp.path / (std::string("whole_") + loss_type));
    whole.max_steps = 6, whole.save_steps = 2;
    whole.loss = loss::config_from_json({{"loss_type", loss_type}, {"beta", 0.5}});
    ASSERT_EQ(Trainer(whole).run(), 0);
    TrainOptions resumed = whole;
    resumed.out = setup.tmp.path / (std::string("resumed_") + loss_type);
    resumed.resume_from_checkpoint = whole.out / "checkpoint-2";
    ASSERT_EQ(Trainer(resumed).run(), 0);
    auto bytes = [](const fs::path& file) {
      std::ifstream in(file, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    for (const char* file : {"optimizer.safetensors", "model.safetensors"}) {
      const std::string a = bytes(whole.out / "checkpoint-6" / file), b = bytes(resumed.out / "checkpoint-6" / file);
      ASSERT_FALSE(a.empty()) << file;
      EXPECT_TRUE(a == b) << file << " differs after resume";
    }
    std::ifstream sa(whole.out / "checkpoint-6" / "trainer_state.json"), sb(resumed.out / "checkpoint-6" / "trainer_state.json");
    EXPECT_EQ(nlohmann::json::parse(sa)["loss_state"], nlohmann::json::parse(sb)["loss_state"]);
  }
}

TEST(Training, ResumeContinuesWithIdenticalLosses) {
  TrainingSetup setup(48);
  SCOPED_TRACE(setup.trace());
  const TempDir& tmp = setup.tmp;
  TrainOptions whole = base_options(tmp.path / "model", tmp.path / "data.jsonl", tmp.path / "whole");
  whole.max_steps = 8, whole.save_steps = 3, whole.lr_scheduler_type = Schedule::linear, whole.warmup_steps = 2;
  ASSERT_EQ(Trainer(whole).run(), 0);
  TrainOptions resumed = whole;
  resumed.out = tmp.path / "resumed";
  resumed.resume_from_checkpoint = whole.out / "checkpoint-3";
  ASSERT_EQ(Trainer(resumed).run(), 0);
  auto a = read_metrics(whole.out, "loss"), b = read_metrics(resumed.out, "loss");
  ASSERT_EQ(a.size(), 8u);
  ASSERT_EQ(b.size(), 5u);  // steps 4..8 (an epoch of 6 steps wraps: the data order must carry over)
  for (size_t s = 0; s < b.size(); ++s) {
    EXPECT_EQ(b[s]["step"], a[s + 3]["step"]);
    EXPECT_EQ(b[s]["loss"].get<double>(), a[s + 3]["loss"].get<double>()) << "step " << s + 4;
    EXPECT_EQ(b[s]["learning_rate"].get<double>(), a[s + 3]["learning_rate"].get<double>());
  }
}

// The error of constructing a Trainer, or "" when it accepts the options.
std::string refusal(const TrainOptions& o) {
  try {
    Trainer t(o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Training, ResumeRefusesAnotherRunNamingTheDifference) {
  TrainingSetup setup(32);
  SCOPED_TRACE(setup.trace());
  const TempDir& tmp = setup.tmp;
  TrainOptions first = base_options(setup.model, setup.data, tmp.path / "first");
  first.max_steps = 4, first.save_steps = 2;
  ASSERT_EQ(Trainer(first).run(), 0);
  TrainOptions same = first;
  same.out = tmp.path / "resumed";
  same.resume_from_checkpoint = first.out / "checkpoint-2";
  same.threads = 1, same.logging_steps = 2;  // neutral: they change no number
  EXPECT_EQ(refusal(same), "");

  struct Change {
    const char* name;
    std::function<void(TrainOptions&)> apply;
  };
  const Change changes[] = {
      {"max_steps", [](TrainOptions& o) { o.max_steps = 9; }},
      {"batch_size", [](TrainOptions& o) { o.batch_size = 4; }},
      {"learning_rate", [](TrainOptions& o) { o.learning_rate = 1e-4; }},
      {"loss_type", [](TrainOptions& o) { o.loss = loss::config_from_json({{"loss_type", "ipo"}, {"beta", 0.5}}); }},
      {"seed", [](TrainOptions& o) { o.seed = 8; }},
      {"max_prompt_length", [](TrainOptions& o) { o.max_prompt_length = 6; }},
      {"model", [&](TrainOptions& o) {
         write_model(tmp.path / "other_model", setup.seed + 9);
         o.model = tmp.path / "other_model";
       }},
      {"data", [&](TrainOptions& o) {
         write_task(tmp.path / "other.jsonl", 32, setup.seed + 9);
         o.data = tmp.path / "other.jsonl";
       }},
  };
  for (const Change& c : changes) {
    SCOPED_TRACE(c.name);
    TrainOptions changed = same;
    c.apply(changed);
    const std::string why = refusal(changed);
    EXPECT_NE(why.find("not the one that wrote the checkpoint"), std::string::npos) << why;
    EXPECT_NE(why.find(c.name), std::string::npos) << why;
    changed.allow_option_changes = {c.name};
    if (std::string(c.name) == "max_prompt_length") changed.allow_option_changes.push_back("data");  // it truncates
    EXPECT_EQ(refusal(changed), "");
  }
  // The resumed run's checkpoints record its own options.
  TrainOptions longer = same;
  longer.max_steps = 5, longer.allow_option_changes = {"max_steps"};
  ASSERT_EQ(Trainer(longer).run(), 0);
  std::ifstream state(longer.out / "checkpoint-5" / "trainer_state.json");
  EXPECT_EQ(nlohmann::json::parse(state)["options"]["max_steps"], 5);
}

TEST(Training, ReferenceCacheIsCheckedWithRefModelAndOnResume) {
  TrainingSetup setup(24);
  SCOPED_TRACE(setup.trace());
  const TempDir& tmp = setup.tmp;
  write_model(tmp.path / "other_model", setup.seed + 5);
  TrainOptions o = base_options(setup.model, setup.data, tmp.path / "a");
  o.max_steps = 2, o.save_steps = 1;
  engine::EngineOptions eo;
  eo.model = setup.model;
  auto reference = engine::make_engine(eo);
  ReferenceCache::build(tmp.path / "ref.jsonl", *reference, load_training_data(o, reference->config()).train, 64);
  o.ref_cache = tmp.path / "ref.jsonl";
  ASSERT_EQ(Trainer(o).run(), 0);
  TrainOptions other_ref = o;
  other_ref.out = tmp.path / "b";
  other_ref.ref_model = tmp.path / "other_model";
  EXPECT_NE(refusal(other_ref).find("other reference weights"), std::string::npos);
  other_ref.ref_model = setup.model;  // --ref-model naming the weights the cache came from
  EXPECT_EQ(refusal(other_ref), "");
  // On resume the starting weights are still the reference: another --model is caught.
  TrainOptions resumed = o;
  resumed.out = tmp.path / "c";
  resumed.resume_from_checkpoint = o.out / "checkpoint-1";
  resumed.model = tmp.path / "other_model";
  resumed.allow_option_changes = {"model"};
  EXPECT_NE(refusal(resumed).find("other reference weights"), std::string::npos);
}

TEST(Training, ReferenceCacheGivesTheSameRunAndRejectsOtherData) {
  TrainingSetup setup(40);
  SCOPED_TRACE(setup.trace());
  const TempDir& tmp = setup.tmp;
  const uint64_t seed = setup.seed;
  TrainOptions with_model = base_options(tmp.path / "model", tmp.path / "data.jsonl", tmp.path / "a");
  with_model.max_steps = 5;
  ASSERT_EQ(Trainer(with_model).run(), 0);

  // Build the cache as duet ref does: all examples, shared layout, packed.
  engine::EngineOptions eo;
  eo.model = with_model.model;
  auto reference = engine::make_engine(eo);
  auto data = load_training_data(with_model, reference->config());
  ReferenceCache::build(tmp.path / "ref.jsonl", *reference, data.train, 64);

  TrainOptions with_cache = with_model;
  with_cache.out = tmp.path / "b";
  with_cache.ref_cache = tmp.path / "ref.jsonl";
  ASSERT_EQ(Trainer(with_cache).run(), 0);
  auto a = read_metrics(with_model.out, "loss"), b = read_metrics(with_cache.out, "loss");
  ASSERT_EQ(a.size(), b.size());
  for (size_t s = 0; s < a.size(); ++s) {
    // The cache was scored in another layout: equal up to fp32 summation order.
    EXPECT_NEAR(b[s]["loss"].get<double>(), a[s]["loss"].get<double>(), 1e-5) << "step " << s + 1;
  }

  // Other data (same file name, new contents) must not silently reuse the cache.
  write_task(tmp.path / "data.jsonl", 40, seed + 2);
  with_cache.out = tmp.path / "c";
  try {
    Trainer t(with_cache);
    FAIL() << "a stale cache was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rebuild"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace duet::trainer
