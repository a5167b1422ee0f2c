// Analytic derivatives of the step loss against central finite differences,
// in double precision.
//
// Tolerance: with h = 1e-5 nats, the rounding error of the difference quotient
// is about eps*|L|/h (<= ~1e-8 for losses of a few hundred, as sppo_hard on
// sums of hundreds of tokens) and the truncation error h^2 f'''/6 is
// negligible at these curvatures. Measured over 400 random trials per type,
// the worst |analytic - fd| was 3e-9 (sppo_hard, ipo); the tolerance
// 1e-8 + 1e-7*|fd| leaves a margin of 3-40x, while a wrong factor (beta, 1/N,
// 1/length, a sign, a missing term) is off by about |g|, which is > 1e-5 for
// almost every derivative drawn here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "helpers.hpp"
#include "loss/loss.hpp"
#include "util/error.hpp"

namespace duet::loss {
namespace {

using testing::Rng;

constexpr double kStep = 1e-5;

double tolerance(double fd) { return 1e-8 + 1e-7 * std::abs(fd); }

void expect_gradients_match(const LossConfig& config, const std::vector<PairLogps>& pairs,
                            const LossState& state = {}) {
  const BatchResult result = evaluate(config, pairs, state);
  auto loss = [&](const std::vector<PairLogps>& p) { return evaluate(config, p, state).loss_mean; };
  for (size_t i = 0; i < pairs.size(); ++i) {
    for (bool chosen : {true, false}) {
      const double fd = testing::central_difference(pairs, i, chosen, kStep, loss);
      const double g = chosen ? result.pairs[i].d_policy_chosen : result.pairs[i].d_policy_rejected;
      EXPECT_NEAR(g, fd, tolerance(fd)) << "pair " << i << (chosen ? " chosen" : " rejected") << " of "
                                        << pairs.size();
    }
  }
}

// Coupled losses sort log-ratios: keep neighbours further apart than the
// finite-difference step so that no evaluation crosses a reordering.
bool well_separated(const std::vector<PairLogps>& pairs) {
  std::vector<double> margins, c, r;
  for (const auto& p : pairs) {
    margins.push_back(p.policy_chosen - p.policy_rejected);
    c.push_back(p.policy_chosen - p.ref_chosen);
    r.push_back(p.policy_rejected - p.ref_rejected);
  }
  for (auto* v : {&margins, &c, &r}) {
    std::sort(v->begin(), v->end());
    for (size_t i = 1; i < v->size(); ++i)
      if ((*v)[i] - (*v)[i - 1] < 1e-3) return false;
  }
  return true;
}

std::vector<PairLogps> pairs_for(Rng& rng, size_t n) {
  for (;;) {
    auto pairs = testing::random_pairs(rng, n);
    if (well_separated(pairs)) return pairs;
  }
}

TEST(LossGradients, EveryTypeMatchesFiniteDifferences) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  for (LossType type : all_loss_types()) {
    SCOPED_TRACE(std::string(name(type)));
    for (int trial = 0; trial < 25; ++trial) {
      LossConfig config;
      config.loss_type = {type};
      config.beta = rng.uniform(0.05, 0.5);
      // Half the trials at label_smoothing 0 where allowed, half inside (0, 0.45).
      config.label_smoothing = (type != LossType::exo_pair && rng.coin()) ? 0.0 : rng.uniform(1e-3, 0.45);
      config.simpo_gamma = rng.uniform(-1, 2);
      config.discopop_tau = rng.uniform(0.05, 1);
      LossState state{rng.uniform(-2, 2), rng.integer(0, 100)};
      const auto pairs = pairs_for(rng, static_cast<size_t>(rng.integer(1, 12)));
      SCOPED_TRACE(fmt::format("trial {} beta {} ls {}", trial, config.beta, config.label_smoothing));
      expect_gradients_match(config, pairs, state);
    }
  }
}

TEST(LossGradients, CombinationsWithWeightsAndRpoAlpha) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  std::vector<LossType> dpo_types;
  for (LossType t : all_loss_types())
    if (t != LossType::simpo && t != LossType::orpo) dpo_types.push_back(t);
  for (int trial = 0; trial < 60; ++trial) {
    LossConfig config;
    config.loss_type.clear();
    const auto count = rng.integer(2, 5);
    for (int64_t k = 0; k < count; ++k) {
      config.loss_type.push_back(dpo_types[static_cast<size_t>(rng.integer(0, int64_t(dpo_types.size()) - 1))]);
      config.loss_weights.push_back(rng.uniform(0, 2));
    }
    config.beta = rng.uniform(0.05, 0.5);
    config.label_smoothing = rng.uniform(1e-3, 0.45);
    if (rng.coin()) config.rpo_alpha = rng.uniform(0, 2);
    LossState state{rng.uniform(-2, 2), rng.integer(0, 100)};
    std::string names;
    for (LossType t : config.loss_type) names += std::string(name(t)) + " ";
    SCOPED_TRACE(names);
    expect_gradients_match(config, pairs_for(rng, static_cast<size_t>(rng.integer(1, 10))), state);
  }
  // The reference-free families with an extra NLL term.
  for (LossType solo : {LossType::simpo, LossType::orpo}) {
    LossConfig config;
    config.loss_type = {solo};
    config.beta = rng.uniform(0.05, 2.5);
    config.label_smoothing = rng.uniform(0, 0.3);
    config.rpo_alpha = rng.uniform(0, 2);
    expect_gradients_match(config, pairs_for(rng, static_cast<size_t>(rng.integer(1, 10))));
  }
}

// Hinge near its kink z = beta*margin = 1, on both sides, never exactly on it:
// the distance d >= 1e-4 exceeds beta*h, so no evaluation crosses the kink.
TEST(LossGradients, HingeNearTheKink) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  for (int trial = 0; trial < 50; ++trial) {
    LossConfig config;
    config.loss_type = {LossType::hinge};
    config.beta = rng.uniform(0.05, 1);
    auto pairs = testing::random_pairs(rng, static_cast<size_t>(rng.integer(1, 8)));
    std::vector<double> offsets;
    for (auto& p : pairs) {
      const double offset = (rng.coin() ? 1 : -1) * rng.uniform(1e-4, 1e-2);
      const double r = p.policy_rejected - p.ref_rejected;
      p.policy_chosen = p.ref_chosen + r + (1 + offset) / config.beta;
      offsets.push_back(offset);
    }
    expect_gradients_match(config, pairs);
    // Plain expectations: slope -beta/N below the kink, 0 above.
    const BatchResult result = evaluate(config, pairs, {});
    const double n = static_cast<double>(pairs.size());
    for (size_t i = 0; i < pairs.size(); ++i) {
      const double expected = offsets[i] < 0 ? -config.beta / n : 0.0;
      EXPECT_NEAR(result.pairs[i].d_policy_chosen, expected, 1e-15);
      EXPECT_NEAR(result.pairs[i].d_policy_rejected, -expected, 1e-15);
    }
  }
}

}  // namespace
}  // namespace duet::loss
