// The step as a whole: splitting it into parts, coupled losses, bco_pair's
// running mean and its serialised state, bad inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "loss/loss.hpp"
#include "util/error.hpp"

namespace duet::loss {
namespace {

using testing::Rng;
using testing::single;

// The step loss is the mean over the step's N pairs (docs/losses.md): for losses that do not couple pairs, computing a step in parts
// (micro-batches, packed rows) and adding the parts reproduces the whole step.
TEST(LossStep, SplittingAStepReproducesTheWholeStep) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  std::vector<LossConfig> configs;
  for (LossType t : all_loss_types()) {
    LossConfig c = single(t, rng.uniform(0.05, 0.5), rng.uniform(1e-3, 0.45));
    if (!couples_pairs(c)) configs.push_back(c);
  }
  LossConfig combo = single(LossType::sigmoid, 0.1, 0.1);
  combo.loss_type = {LossType::sigmoid, LossType::sft, LossType::apo_zero};
  combo.loss_weights = {1, 0.3, 0.5};
  combo.rpo_alpha = 0.7;
  configs.push_back(combo);
  for (const LossConfig& c : configs) {
    SCOPED_TRACE(std::string(name(c.loss_type[0])));
    const auto pairs = testing::random_pairs(rng, static_cast<size_t>(rng.integer(2, 24)));
    const auto n = static_cast<int64_t>(pairs.size());
    const BatchResult whole = evaluate(c, pairs, {});
    double sum = 0;
    for (size_t begin = 0; begin < pairs.size();) {
      const size_t len = static_cast<size_t>(rng.integer(1, n - static_cast<int64_t>(begin)));
      const std::span<const PairLogps> part(pairs.data() + begin, len);
      const BatchResult r = evaluate(c, part, {}, n);
      sum += r.loss_mean;
      for (size_t i = 0; i < len; ++i) {
        EXPECT_DOUBLE_EQ(r.pairs[i].loss, whole.pairs[begin + i].loss);
        EXPECT_DOUBLE_EQ(r.pairs[i].d_policy_chosen, whole.pairs[begin + i].d_policy_chosen);
        EXPECT_DOUBLE_EQ(r.pairs[i].d_policy_rejected, whole.pairs[begin + i].d_policy_rejected);
      }
      begin += len;
    }
    EXPECT_NEAR(sum, whole.loss_mean, 1e-12 * (1 + std::abs(whole.loss_mean)));
  }
}

TEST(LossStep, CoupledLossesRefuseAPartialStep) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  const auto pairs = testing::random_pairs(rng, 4);
  for (LossType t : {LossType::aot, LossType::aot_unpaired, LossType::bco_pair}) {
    LossState state;
    EXPECT_THROW(compute(single(t, 0.1), pairs, state, 8), Error);
    EXPECT_NO_THROW(compute(single(t, 0.1), pairs, state, 4));
  }
  LossState state;
  EXPECT_THROW(evaluate(single(LossType::sigmoid, 0.1), pairs, state, 3), Error);  // fewer than given
}

TEST(LossStep, BcoPairRunningMeanAcrossSteps) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  const LossConfig c = single(LossType::bco_pair, rng.uniform(0.05, 0.5));
  LossState state;
  std::vector<double> step_means;
  for (int step = 0; step < 12; ++step) {
    const auto pairs = testing::random_pairs(rng, static_cast<size_t>(rng.integer(1, 10)));
    double sum = 0;
    for (const auto& p : pairs)
      sum += c.beta * (p.policy_chosen - p.ref_chosen) + c.beta * (p.policy_rejected - p.ref_rejected);
    step_means.push_back(sum / (2.0 * double(pairs.size())));
    const double delta = std::accumulate(step_means.begin(), step_means.end(), 0.0) / double(step_means.size());

    const LossState before = state;
    const BatchResult eval = evaluate(c, pairs, state);
    EXPECT_EQ(state, before);  // evaluation does not move the mean
    auto plain = [&](double mean) {
      double sum = 0;
      for (const auto& p : pairs)
        sum += -std::log(1 / (1 + std::exp(-(c.beta * (p.policy_chosen - p.ref_chosen) - mean)))) -
               std::log(1 / (1 + std::exp(c.beta * (p.policy_rejected - p.ref_rejected) - mean)));
      return sum / double(pairs.size());
    };
    // Evaluation uses the mean of the earlier steps only (0 before the first).
    const double earlier = step == 0 ? 0.0
                                     : std::accumulate(step_means.begin(), step_means.end() - 1, 0.0) /
                                           double(step_means.size() - 1);
    EXPECT_NEAR(eval.loss_mean, plain(earlier), 1e-10 * (1 + std::abs(plain(earlier))));
    const BatchResult r = compute(c, pairs, state);
    EXPECT_EQ(state.bco_steps, step + 1);
    EXPECT_NEAR(state.bco_reward_mean, delta, 1e-12 * (1 + std::abs(delta)));
    // The loss of a training step uses the mean that already includes it.
    const double expected = plain(delta);
    EXPECT_NEAR(r.loss_mean, expected, 1e-10 * (1 + expected));
    if (step > 0 && std::abs(state.bco_reward_mean - before.bco_reward_mean) > 1e-9) {
      EXPECT_NE(eval.loss_mean, r.loss_mean);
    }
  }
}

TEST(LossState, JsonRoundTripIsExact) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  for (int i = 0; i < 100; ++i) {
    const LossState s{rng.uniform(-10, 10) * std::pow(10.0, double(rng.integer(-20, 20))), rng.integer(0, 1 << 30)};
    const LossState back = state_from_json(nlohmann::json::parse(to_json(s).dump()));
    EXPECT_EQ(back, s);  // bitwise-equal double
  }
  EXPECT_THROW(state_from_json(nlohmann::json::parse(R"({"bco_reward_mean": 1})")), Error);
  EXPECT_THROW(state_from_json(nlohmann::json::parse(R"({"bco_reward_mean": 1, "bco_steps": -1})")), Error);
  EXPECT_THROW(state_from_json(nlohmann::json::parse(R"([1, 2])")), Error);
}

TEST(LossInputs, BadInputsFailAndLeaveStateUnchanged) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  const LossConfig c = single(LossType::bco_pair, 0.1);
  LossState state{0.5, 7};
  const LossState before = state;
  EXPECT_THROW(compute(c, std::vector<PairLogps>{}, state), Error);
  auto pairs = testing::random_pairs(rng, 3);
  pairs[1].policy_rejected = std::nan("");
  EXPECT_THROW(compute(c, pairs, state), Error);
  pairs = testing::random_pairs(rng, 3);
  pairs[2].chosen_tokens = -1;
  EXPECT_THROW(compute(c, pairs, state), Error);
  pairs = testing::random_pairs(rng, 3);
  pairs[0].ref_chosen = INFINITY;
  EXPECT_THROW(compute(c, pairs, state), Error);
  EXPECT_EQ(state, before);
}

}  // namespace
}  // namespace duet::loss
