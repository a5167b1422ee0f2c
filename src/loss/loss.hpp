#pragma once
// The loss layer: works on per-response sums of log-probs of one optimizer
// step, never on tokens. The step loss is the mean over the step's pairs
// (the number of pairs, not of rows or tokens), so it does not depend on how pairs were laid out or packed.
#include <cstdint>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "loss/config.hpp"

namespace duet::loss {

struct PairLogps {
  double policy_chosen = 0, policy_rejected = 0;  // sums over response tokens
  double ref_chosen = 0, ref_rejected = 0;        // ignored unless needs_reference()
  int64_t chosen_tokens = 0, rejected_tokens = 0;  // response lengths (0 is read as 1, like TRL's clamp)
  // The policy's mean logit over the vocabulary and the response's tokens,
  // sum_tokens sum_v z_v / (tokens * V); NaN when the engine gives none. Only
  // the metrics logits/chosen and logits/rejected read them.
  double chosen_logits = std::numeric_limits<double>::quiet_NaN();
  double rejected_logits = std::numeric_limits<double>::quiet_NaN();
};

struct PairResult {
  double loss = 0;  // this pair's term of the step loss, before the 1/N of the mean
  // Derivatives of the step loss (the mean over N pairs, so they carry 1/N)
  // with respect to this pair's policy log-prob sums.
  double d_policy_chosen = 0, d_policy_rejected = 0;
  double reward_chosen = 0, reward_rejected = 0;  // as TRL logs them (see docs/losses.md)
};

struct BatchResult {
  std::vector<PairResult> pairs;
  double loss_mean = 0;  // sum of pairs[i].loss / N
  // Means over the given pairs, keyed as TRL logs them: rewards/chosen,
  // rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen,
  // logps/rejected; logits/chosen and logits/rejected when every pair has
  // them; nll_loss when an NLL term is used; log_odds_ratio and
  // log_odds_chosen for orpo.
  std::map<std::string, double> metrics;
};

// State carried from step to step: bco_pair's running mean of rewards. Saved
// with checkpoints so that a resumed run continues exactly.
struct LossState {
  double bco_reward_mean = 0;  // mean over steps of each step's mean reward
  int64_t bco_steps = 0;       // steps taken into the mean
  bool operator==(const LossState&) const = default;
};
nlohmann::json to_json(const LossState& state);
LossState state_from_json(const nlohmann::json& object);

// Training step: advances `state` with this step's pairs (bco_pair takes the
// step's mean reward into its running mean before computing the loss, as TRL
// does), then returns evaluate() at the new state. `state` is left unchanged
// when it throws.
//
// step_pairs: the number of pairs N in the whole step when `pairs` is only a
// part of it (0: pairs.size()). Allowed only for losses that do not couple
// pairs; then loss_mean and d_policy_* are divided by N, so the parts add up
// to the step's values, while metrics stay means over `pairs`.
BatchResult compute(const LossConfig& config, std::span<const PairLogps> pairs, LossState& state,
                    int64_t step_pairs = 0);

// The loss at a fixed state, without updating it (evaluation passes; unlike
// TRL, evaluation does not move bco_pair's running mean). The derivatives
// treat the state as a constant, as TRL detaches the running mean.
BatchResult evaluate(const LossConfig& config, std::span<const PairLogps> pairs, const LossState& state,
                     int64_t step_pairs = 0);

}  // namespace duet::loss
