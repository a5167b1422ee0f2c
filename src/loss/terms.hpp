#pragma once
// Per-loss-type terms with their analytic derivatives (internal to duet_loss).
#include <span>

#include "loss/config.hpp"
#include "loss/loss.hpp"

namespace duet::loss::detail {

// One pair's share of the step loss before the 1/N of the mean, and its
// derivatives with respect to the pair's policy log-prob sums.
struct Grad {
  double loss = 0, d_chosen = 0, d_rejected = 0;
};

// Adds weight * (the `type` term) into out[i] for every pair. bco_delta is
// bco_pair's running mean of rewards (a constant for the derivatives).
void add_term(LossType type, double weight, const LossConfig& config, double bco_delta,
              std::span<const PairLogps> pairs, std::span<Grad> out);

// Response length used by length-normalised terms: at least 1 (TRL clamps).
inline double length(int64_t tokens) { return tokens < 1 ? 1.0 : static_cast<double>(tokens); }

// The NLL term on the chosen response, one pair: mean NLL per chosen token.
inline double chosen_nll(const PairLogps& p) { return -p.policy_chosen / length(p.chosen_tokens); }

}  // namespace duet::loss::detail
