#pragma once
// Shared test helpers: seeded random pairs and a finite-difference gradient.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/seeds.hpp"
#include "loss/loss.hpp"

namespace duet::loss::testing {

// A fresh seed per test, printed through SCOPED_TRACE; DUET_TEST_SEED=<n> replays it.
struct Rng {
  uint64_t seed;
  std::mt19937_64 gen;
  Rng() : seed(::duet::test::fresh_seed()), gen(seed) {}
  std::string trace() const { return fmt::format("DUET_TEST_SEED={}", seed); }
  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(gen); }
  int64_t integer(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(gen); }
  bool coin() { return integer(0, 1) == 1; }
};

// Realistic sums: 1..300 tokens at -0.05..-3 nats per token; the reference
// differs by a few nats so that beta * margins are of order one.
inline PairLogps random_pair(Rng& rng) {
  PairLogps p;
  p.chosen_tokens = rng.integer(1, 300);
  p.rejected_tokens = rng.integer(1, 300);
  p.policy_chosen = static_cast<double>(p.chosen_tokens) * rng.uniform(-3, -0.05);
  p.policy_rejected = static_cast<double>(p.rejected_tokens) * rng.uniform(-3, -0.05);
  p.ref_chosen = p.policy_chosen + rng.uniform(-5, 5);
  p.ref_rejected = p.policy_rejected + rng.uniform(-5, 5);
  return p;
}

inline std::vector<PairLogps> random_pairs(Rng& rng, size_t n) {
  std::vector<PairLogps> pairs(n);
  for (auto& p : pairs) p = random_pair(rng);
  return pairs;
}

inline LossConfig single(LossType type, double beta, double label_smoothing = 0) {
  LossConfig c;
  c.loss_type = {type};
  c.beta = beta;
  c.label_smoothing = label_smoothing;
  return c;
}

inline PairLogps swapped(const PairLogps& p) {
  return {p.policy_rejected, p.policy_chosen, p.ref_rejected, p.ref_chosen, p.rejected_tokens, p.chosen_tokens,
          p.rejected_logits, p.chosen_logits};
}

// Central difference of the step loss in one input, with the step actually
// representable (xp - xm computed, not assumed to be 2h).
template <typename Loss>
double central_difference(std::vector<PairLogps> pairs, size_t i, bool chosen, double h, Loss&& loss) {
  double& x = chosen ? pairs[i].policy_chosen : pairs[i].policy_rejected;
  const double x0 = x, xp = x0 + h, xm = x0 - h;
  x = xp;
  const double lp = loss(pairs);
  x = xm;
  const double lm = loss(pairs);
  return (lp - lm) / (xp - xm);
}

}  // namespace duet::loss::testing
