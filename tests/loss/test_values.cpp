// Loss values against formulas written out plainly here (from TRL's
// definitions and the papers), and properties that hold whatever the code.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "helpers.hpp"
#include "loss/loss.hpp"
#include "util/error.hpp"

namespace duet::loss {
namespace {

using testing::Rng;
using testing::single;

double sig(double x) { return 1 / (1 + std::exp(-x)); }
double logsig(double x) { return std::log(sig(x)); }

// Per-pair loss of a non-sorting type, written plainly (naive exp/log are
// fine at these magnitudes).
double plain(const LossConfig& c, const PairLogps& p, double delta) {
  const double b = c.beta, e = c.label_smoothing;
  const double pc = p.policy_chosen, pr = p.policy_rejected;
  const double cr = pc - p.ref_chosen, rr = pr - p.ref_rejected;
  const double lc = double(std::max<int64_t>(p.chosen_tokens, 1)), lr = double(std::max<int64_t>(p.rejected_tokens, 1));
  const double z = b * (cr - rr);
  switch (c.loss_type[0]) {
    case LossType::sigmoid: return -(1 - e) * logsig(z) - e * logsig(-z);
    case LossType::hinge: return std::max(0.0, 1 - z);
    case LossType::ipo: return std::pow(cr / lc - rr / lr - 1 / (2 * b), 2);
    case LossType::exo_pair:
      return sig(z) * (std::log(sig(z)) - std::log(1 - e)) + sig(-z) * (std::log(sig(-z)) - std::log(e));
    case LossType::nca_pair: return -logsig(b * cr) - 0.5 * logsig(-b * cr) - 0.5 * logsig(-b * rr);
    case LossType::robust: return (-(1 - e) * logsig(z) + e * logsig(-z)) / (1 - 2 * e);
    case LossType::bco_pair: return -logsig(b * cr - delta) - logsig(-(b * rr - delta));
    case LossType::sppo_hard: return std::pow(cr - 0.5 / b, 2) + std::pow(rr + 0.5 / b, 2);
    case LossType::apo_zero: return (1 - sig(b * cr)) + sig(b * rr);
    case LossType::apo_down: return sig(b * cr) + (1 - sig(b * (cr - rr)));
    case LossType::discopop: {
      const double m = sig(z / c.discopop_tau);
      return -logsig(z) * (1 - m) + std::exp(-z) * m;
    }
    case LossType::sft: return -pc / lc;
    case LossType::sigmoid_norm: return -logsig(b * (cr / lc - rr / lr));
    case LossType::simpo: {
      // SimPO paper: -log s(beta/|y_w| log pi(y_w) - beta/|y_l| log pi(y_l) - gamma), cDPO-smoothed.
      const double x = b * pc / lc - b * pr / lr - c.simpo_gamma;
      return -(1 - e) * logsig(x) - e * logsig(-x);
    }
    case LossType::orpo: {
      // ORPO paper: NLL - lambda log s(log(odds_w / odds_l)), odds = P/(1-P),
      // P = exp(mean token log-prob).
      const double pw = std::exp(pc / lc), pl = std::exp(pr / lr);
      return -pc / lc - b * logsig(std::log((pw / (1 - pw)) / (pl / (1 - pl))));
    }
    default: ADD_FAILURE() << "no plain formula"; return 0;
  }
}

// aot / aot_unpaired written out: sort two vectors, pair them by rank.
double plain_sorted_mean(const LossConfig& c, const std::vector<PairLogps>& pairs) {
  std::vector<double> a, b;
  for (const auto& p : pairs) {
    if (c.loss_type[0] == LossType::aot) {
      a.push_back(p.policy_chosen - p.policy_rejected);
      b.push_back(p.ref_chosen - p.ref_rejected);
    } else {
      a.push_back(p.policy_chosen - p.ref_chosen);
      b.push_back(p.policy_rejected - p.ref_rejected);
    }
  }
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double z = c.beta * (a[i] - b[i]);
    sum += -(1 - c.label_smoothing) * logsig(z) - c.label_smoothing * logsig(-z);
  }
  return sum / double(a.size());
}

double mean_loss(const LossConfig& c, const std::vector<PairLogps>& pairs, const LossState& s = {}) {
  return evaluate(c, pairs, s).loss_mean;
}

TEST(LossValues, SigmoidIsMinusLogSigmoidOfBetaMargin) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  const double beta = rng.uniform(0.05, 0.5);
  const auto pairs = testing::random_pairs(rng, static_cast<size_t>(rng.integer(1, 16)));
  double sum = 0, rc = 0, rr = 0, acc = 0, lc = 0;
  for (const auto& p : pairs) {
    const double margin = (p.policy_chosen - p.ref_chosen) - (p.policy_rejected - p.ref_rejected);
    sum += -std::log(1 / (1 + std::exp(-beta * margin)));
    rc += beta * (p.policy_chosen - p.ref_chosen);
    rr += beta * (p.policy_rejected - p.ref_rejected);
    acc += (p.policy_chosen - p.ref_chosen) > (p.policy_rejected - p.ref_rejected);
    lc += p.policy_chosen;
  }
  const double n = double(pairs.size());
  const BatchResult r = evaluate(single(LossType::sigmoid, beta), pairs, {});
  EXPECT_NEAR(r.loss_mean, sum / n, 1e-12 * std::abs(sum / n));
  EXPECT_NEAR(r.metrics.at("rewards/chosen"), rc / n, 1e-12 * (1 + std::abs(rc / n)));
  EXPECT_NEAR(r.metrics.at("rewards/rejected"), rr / n, 1e-12 * (1 + std::abs(rr / n)));
  EXPECT_NEAR(r.metrics.at("rewards/margins"), (rc - rr) / n, 1e-12 * (1 + std::abs(rc - rr) / n));
  EXPECT_DOUBLE_EQ(r.metrics.at("rewards/accuracies"), acc / n);
  EXPECT_NEAR(r.metrics.at("logps/chosen"), lc / n, 1e-12 * std::abs(lc / n));
  EXPECT_EQ(r.metrics.count("nll_loss"), 0u);
}

TEST(LossValues, EveryTypeMatchesItsPlainFormula) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  for (LossType type : all_loss_types()) {
    SCOPED_TRACE(std::string(name(type)));
    for (int trial = 0; trial < 10; ++trial) {
      LossConfig c = single(type, rng.uniform(0.05, 0.5), rng.uniform(1e-3, 0.45));
      c.simpo_gamma = rng.uniform(-1, 2);
      c.discopop_tau = rng.uniform(0.05, 1);
      const LossState state{rng.uniform(-2, 2), rng.integer(0, 50)};
      const auto pairs = testing::random_pairs(rng, static_cast<size_t>(rng.integer(1, 12)));
      double expected = 0;
      if (type == LossType::aot || type == LossType::aot_unpaired) {
        expected = plain_sorted_mean(c, pairs);
      } else {
        for (const auto& p : pairs) expected += plain(c, p, state.bco_reward_mean);
        expected /= double(pairs.size());
      }
      EXPECT_NEAR(mean_loss(c, pairs, state), expected, 1e-9 * (1 + std::abs(expected)));
    }
  }
}

TEST(LossValues, CombinationIsTheWeightedSumPlusRpoNll) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  const auto pairs = testing::random_pairs(rng, static_cast<size_t>(rng.integer(1, 12)));
  LossConfig combo;
  combo.loss_type = {LossType::sigmoid, LossType::bco_pair, LossType::sft, LossType::ipo};
  combo.loss_weights = {rng.uniform(0, 2), rng.uniform(0, 2), rng.uniform(0, 2), rng.uniform(0, 2)};
  combo.beta = rng.uniform(0.05, 0.5);
  combo.label_smoothing = rng.uniform(0, 0.4);
  combo.rpo_alpha = rng.uniform(0, 2);
  const LossState state{rng.uniform(-1, 1), 3};
  double expected = 0, nll = 0;
  for (size_t k = 0; k < combo.loss_type.size(); ++k) {
    LossConfig one = single(combo.loss_type[k], combo.beta, combo.label_smoothing);
    expected += combo.loss_weights[k] * mean_loss(one, pairs, state);
  }
  for (const auto& p : pairs) nll += -p.policy_chosen / double(p.chosen_tokens);
  nll /= double(pairs.size());
  expected += *combo.rpo_alpha * nll;
  const BatchResult r = evaluate(combo, pairs, state);
  EXPECT_NEAR(r.loss_mean, expected, 1e-12 * (1 + std::abs(expected)));
  EXPECT_NEAR(r.metrics.at("nll_loss"), nll, 1e-12 * nll);
}

// cDPO: label smoothing eps is the expected loss when each label is flipped
// with probability eps.
TEST(LossValues, LabelSmoothingMixesFlippedLabels) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  const auto pairs = testing::random_pairs(rng, static_cast<size_t>(rng.integer(1, 12)));
  std::vector<PairLogps> flipped;
  for (const auto& p : pairs) flipped.push_back(testing::swapped(p));
  const double beta = rng.uniform(0.05, 0.5), eps = rng.uniform(1e-3, 0.45);
  const double clean = mean_loss(single(LossType::sigmoid, beta), pairs);
  const double clean_flipped = mean_loss(single(LossType::sigmoid, beta), flipped);
  const double smoothed = mean_loss(single(LossType::sigmoid, beta, eps), pairs);
  EXPECT_NEAR(smoothed, (1 - eps) * clean + eps * clean_flipped, 1e-12 * (1 + smoothed));
  // Robust DPO is unbiased: its expectation under the same flips is the clean loss.
  const double robust = mean_loss(single(LossType::robust, beta, eps), pairs);
  const double robust_flipped = mean_loss(single(LossType::robust, beta, eps), flipped);
  EXPECT_NEAR((1 - eps) * robust + eps * robust_flipped, clean, 1e-9 * (1 + clean));
}

TEST(LossValues, SwappingChosenAndRejectedFlipsAccuracyAndMargins) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  const auto pairs = testing::random_pairs(rng, static_cast<size_t>(rng.integer(1, 32)));
  std::vector<PairLogps> flipped;
  for (const auto& p : pairs) flipped.push_back(testing::swapped(p));
  for (LossType type : {LossType::sigmoid, LossType::simpo, LossType::orpo}) {
    const LossConfig c = single(type, rng.uniform(0.05, 0.5));
    const BatchResult a = evaluate(c, pairs, {}), b = evaluate(c, flipped, {});
    EXPECT_DOUBLE_EQ(a.metrics.at("rewards/accuracies") + b.metrics.at("rewards/accuracies"), 1.0);
    EXPECT_NEAR(a.metrics.at("rewards/margins"), -b.metrics.at("rewards/margins"), 1e-12);
    EXPECT_DOUBLE_EQ(a.metrics.at("rewards/chosen"), b.metrics.at("rewards/rejected"));
  }
  // For sigmoid, l(z) - l(-z) = -z per pair (softplus identity).
  const double beta = rng.uniform(0.05, 0.5);
  const BatchResult a = evaluate(single(LossType::sigmoid, beta), pairs, {});
  const BatchResult b = evaluate(single(LossType::sigmoid, beta), flipped, {});
  for (size_t i = 0; i < pairs.size(); ++i)
    EXPECT_NEAR(a.pairs[i].loss - b.pairs[i].loss,
                -(a.pairs[i].reward_chosen - a.pairs[i].reward_rejected), 1e-9);
}

// Build pairs whose per-token log-ratio margin is `margin`.
std::vector<PairLogps> with_per_token_margin(Rng& rng, double margin, size_t n) {
  auto pairs = testing::random_pairs(rng, n);
  for (auto& p : pairs) {
    const double rr = (p.policy_rejected - p.ref_rejected) / double(p.rejected_tokens);
    p.policy_chosen = p.ref_chosen + double(p.chosen_tokens) * (rr + margin);
  }
  return pairs;
}

TEST(LossValues, IpoIsMinimalAtPerTokenMarginOneOverTwoBeta) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  const double beta = rng.uniform(0.05, 1);
  const LossConfig c = single(LossType::ipo, beta);
  const double target = 1 / (2 * beta), delta = rng.uniform(1e-3, 1e-1);
  // Same random pairs at three margins.
  Rng copy = rng;
  auto at = with_per_token_margin(rng, target, 6);
  rng = copy;
  auto below = with_per_token_margin(rng, target - delta, 6);
  rng = copy;
  auto above = with_per_token_margin(rng, target + delta, 6);
  const BatchResult r = evaluate(c, at, {});
  EXPECT_NEAR(r.loss_mean, 0, 1e-18 + 1e-10 * target * target);
  for (const auto& p : r.pairs) EXPECT_NEAR(p.d_policy_chosen, 0, 1e-9);
  EXPECT_NEAR(mean_loss(c, below), delta * delta, 1e-9);
  EXPECT_NEAR(mean_loss(c, above), delta * delta, 1e-9);
}

TEST(LossValues, ExoAndSppoMinima) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  const double beta = rng.uniform(0.05, 1), eps = rng.uniform(1e-3, 0.45);
  // exo_pair is KL(Bern(s(z)) || Bern(1-eps)): zero at s(z) = 1-eps.
  auto pairs = testing::random_pairs(rng, 4);
  const double z_star = std::log((1 - eps) / eps);
  for (auto& p : pairs)
    p.policy_chosen = p.ref_chosen + (p.policy_rejected - p.ref_rejected) + z_star / beta;
  const LossConfig exo = single(LossType::exo_pair, beta, eps);
  EXPECT_NEAR(mean_loss(exo, pairs), 0, 1e-12);
  auto moved = pairs;
  for (auto& p : moved) p.policy_chosen += (rng.coin() ? 1 : -1) * rng.uniform(0.1, 2) / beta;
  EXPECT_GT(mean_loss(exo, moved), 1e-6);
  // sppo_hard is zero at chosen log-ratio 1/(2 beta), rejected -1/(2 beta).
  for (auto& p : pairs) {
    p.policy_chosen = p.ref_chosen + 0.5 / beta;
    p.policy_rejected = p.ref_rejected - 0.5 / beta;
  }
  EXPECT_NEAR(mean_loss(single(LossType::sppo_hard, beta), pairs), 0, 1e-20 + 1e-12 / beta / beta);
}

// TRL's aot with one pair sorts nothing and reduces to (smoothed) sigmoid;
// aot_unpaired likewise.
TEST(LossValues, AotWithOnePairEqualsSigmoid) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  for (int trial = 0; trial < 20; ++trial) {
    const std::vector<PairLogps> one = {testing::random_pair(rng)};
    const double beta = rng.uniform(0.05, 0.5), eps = rng.coin() ? 0.0 : rng.uniform(1e-3, 0.45);
    const BatchResult s = evaluate(single(LossType::sigmoid, beta, eps), one, {});
    for (LossType type : {LossType::aot, LossType::aot_unpaired}) {
      const BatchResult a = evaluate(single(type, beta, eps), one, {});
      EXPECT_NEAR(a.loss_mean, s.loss_mean, 1e-12 * (1 + s.loss_mean));
      EXPECT_NEAR(a.pairs[0].d_policy_chosen, s.pairs[0].d_policy_chosen, 1e-14);
      EXPECT_NEAR(a.pairs[0].d_policy_rejected, s.pairs[0].d_policy_rejected, 1e-14);
    }
  }
}

TEST(LossValues, AotResultsFollowTheirPairsUnderPermutation) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  const auto pairs = testing::random_pairs(rng, static_cast<size_t>(rng.integer(2, 16)));
  std::vector<size_t> perm(pairs.size());
  std::iota(perm.begin(), perm.end(), size_t{0});
  std::shuffle(perm.begin(), perm.end(), rng.gen);
  std::vector<PairLogps> shuffled;
  for (size_t i : perm) shuffled.push_back(pairs[i]);
  for (LossType type : {LossType::aot, LossType::aot_unpaired}) {
    const LossConfig c = single(type, rng.uniform(0.05, 0.5), rng.uniform(0, 0.4));
    const BatchResult a = evaluate(c, pairs, {}), b = evaluate(c, shuffled, {});
    EXPECT_NEAR(a.loss_mean, b.loss_mean, 1e-12 * (1 + a.loss_mean));
    for (size_t k = 0; k < perm.size(); ++k) {
      EXPECT_DOUBLE_EQ(b.pairs[k].d_policy_chosen, a.pairs[perm[k]].d_policy_chosen);
      EXPECT_DOUBLE_EQ(b.pairs[k].d_policy_rejected, a.pairs[perm[k]].d_policy_rejected);
    }
  }
}

// NLL terms: mean over pairs of per-token NLL; equals TRL's token mean over
// the batch when all chosen responses have the same length.
TEST(LossValues, NllIsPerPairTokenMean) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  auto pairs = testing::random_pairs(rng, static_cast<size_t>(rng.integer(1, 12)));
  const int64_t len = rng.integer(1, 200);
  double nll_sum = 0, token_sum = 0;
  for (auto& p : pairs) {
    p.policy_chosen = double(len) * rng.uniform(-3, -0.05);
    p.chosen_tokens = len;
    nll_sum += -p.policy_chosen;
    token_sum += double(len);
  }
  const BatchResult r = evaluate(single(LossType::sft, 0.1), pairs, {});
  EXPECT_NEAR(r.loss_mean, nll_sum / token_sum, 1e-12 * (nll_sum / token_sum));
  for (const auto& p : r.pairs) EXPECT_EQ(p.d_policy_rejected, 0.0);
}

TEST(LossValues, ReferenceIsIgnoredWhenNotNeeded) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  auto pairs = testing::random_pairs(rng, 5);
  auto no_ref = pairs;
  for (auto& p : no_ref) p.ref_chosen = p.ref_rejected = std::nan("");
  for (LossType t : {LossType::sft, LossType::simpo, LossType::orpo}) {
    const LossConfig c = single(t, 0.2);
    EXPECT_FALSE(needs_reference(c));
    EXPECT_DOUBLE_EQ(evaluate(c, pairs, {}).loss_mean, evaluate(c, no_ref, {}).loss_mean);
  }
  EXPECT_THROW(evaluate(single(LossType::sigmoid, 0.2), no_ref, {}), Error);
}

// Stable forms (softplus, log1mexp, exp(-z) s(z/tau) in log space): no
// overflow to inf or NaN at margins far beyond any training run's.
TEST(LossValues, ExtremeInputsStayFinite) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  for (LossType type : all_loss_types()) {
    SCOPED_TRACE(std::string(name(type)));
    LossConfig c = single(type, rng.uniform(0.5, 1), 0.1);
    std::vector<PairLogps> pairs;
    for (int i = 0; i < 16; ++i) {
      PairLogps p;
      p.chosen_tokens = rng.integer(1, 4096);
      p.rejected_tokens = rng.integer(1, 4096);
      // Per-token means from 1e-12 to 30 nats, reference up to 1e4 nats away.
      p.policy_chosen = -double(p.chosen_tokens) * std::pow(10.0, rng.uniform(-12, 1.5));
      p.policy_rejected = -double(p.rejected_tokens) * std::pow(10.0, rng.uniform(-12, 1.5));
      p.ref_chosen = p.policy_chosen + rng.uniform(-1e4, 1e4);
      p.ref_rejected = p.policy_rejected + rng.uniform(-1e4, 1e4);
      pairs.push_back(p);
    }
    const BatchResult r = evaluate(c, pairs, {});
    EXPECT_TRUE(std::isfinite(r.loss_mean)) << r.loss_mean;
    for (const auto& p : r.pairs) {
      EXPECT_TRUE(std::isfinite(p.d_policy_chosen)) << p.d_policy_chosen;
      EXPECT_TRUE(std::isfinite(p.d_policy_rejected)) << p.d_policy_rejected;
    }
    for (const auto& [key, value] : r.metrics) EXPECT_TRUE(std::isfinite(value)) << key;
  }
}

// Every metric of every loss type, against its definition written out here
// (docs/losses.md, "Rewards and metrics"): the exact set of keys and each value,
// so that a swapped chosen/rejected, a sign flip or a missing per-token
// normalisation in any metric fails.
TEST(LossValues, EveryTypesMetricsEqualTheirDefinitions) {
  Rng rng;
  SCOPED_TRACE(rng.trace());
  for (LossType type : all_loss_types()) {
    SCOPED_TRACE(std::string(name(type)));
    const LossConfig c = single(type, rng.uniform(0.05, 0.5), rng.uniform(1e-3, 0.45));
    auto pairs = testing::random_pairs(rng, static_cast<size_t>(rng.integer(1, 12)));
    for (auto& p : pairs) p.chosen_logits = rng.uniform(-3, 3), p.rejected_logits = rng.uniform(-3, 3);
    const bool per_token = type == LossType::simpo || type == LossType::orpo;
    const bool ref = type != LossType::simpo && type != LossType::orpo && type != LossType::sft;
    std::map<std::string, double> want;
    const double n = double(pairs.size());
    for (const auto& p : pairs) {
      const double lc = double(std::max<int64_t>(p.chosen_tokens, 1)), lr = double(std::max<int64_t>(p.rejected_tokens, 1));
      const double pc = per_token ? p.policy_chosen / lc : p.policy_chosen;
      const double pr = per_token ? p.policy_rejected / lr : p.policy_rejected;
      const double rc = c.beta * (ref ? p.policy_chosen - p.ref_chosen : pc);
      const double rr = c.beta * (ref ? p.policy_rejected - p.ref_rejected : pr);
      want["rewards/chosen"] += rc / n;
      want["rewards/rejected"] += rr / n;
      want["rewards/accuracies"] += (rc > rr ? 1.0 : 0.0) / n;
      want["rewards/margins"] += (rc - rr) / n;
      want["logps/chosen"] += pc / n;
      want["logps/rejected"] += pr / n;
      want["logits/chosen"] += p.chosen_logits / n;
      want["logits/rejected"] += p.rejected_logits / n;
      if (type == LossType::sft || type == LossType::orpo) want["nll_loss"] += -p.policy_chosen / lc / n;
      if (type == LossType::orpo) {
        const double odds = std::log(std::exp(pc) / (1 - std::exp(pc))) - std::log(std::exp(pr) / (1 - std::exp(pr)));
        want["log_odds_chosen"] += odds / n;
        want["log_odds_ratio"] += logsig(odds) / n;
      }
    }
    const BatchResult r = evaluate(c, pairs, {});
    std::vector<std::string> got_keys, want_keys;
    for (const auto& [k, v] : r.metrics) got_keys.push_back(k);
    for (const auto& [k, v] : want) want_keys.push_back(k);
    EXPECT_EQ(got_keys, want_keys);
    for (const auto& [k, v] : want) {
      if (r.metrics.count(k)) {
        EXPECT_NEAR(r.metrics.at(k), v, 1e-9 * (1 + std::abs(v))) << k;
      }
    }
    // Without the engine's logit sums, the logits/* metrics are left out.
    for (auto& p : pairs) p.chosen_logits = p.rejected_logits = std::numeric_limits<double>::quiet_NaN();
    const BatchResult without = evaluate(c, pairs, {});
    EXPECT_EQ(without.metrics.count("logits/chosen") + without.metrics.count("logits/rejected"), 0u);
    EXPECT_EQ(without.metrics.size(), r.metrics.size() - 2);
  }
}

}  // namespace
}  // namespace duet::loss
