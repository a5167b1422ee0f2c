#pragma once
// Loss configuration, named as in TRL (DPOConfig, CPOConfig, ORPOConfig) so
// recipes carry over. docs/losses.md gives every formula and where it follows
// or departs from TRL.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace duet::loss {

enum class LossType {
  sigmoid,
  hinge,
  ipo,
  exo_pair,
  nca_pair,
  robust,
  bco_pair,
  sppo_hard,
  aot,
  aot_unpaired,
  apo_zero,
  apo_down,
  discopop,
  sft,
  sigmoid_norm,
  simpo,  // TRL CPOTrainer loss_type="simpo"
  orpo,   // TRL ORPOTrainer
};

// Every type, in the order above (for listing valid names in messages).
const std::vector<LossType>& all_loss_types();
std::string_view name(LossType type);
std::optional<LossType> parse_loss_type(std::string_view text);

struct LossConfig {
  std::vector<LossType> loss_type{LossType::sigmoid};
  std::vector<double> loss_weights;  // empty: 1.0 for every type (TRL default)
  double beta = 0.1;                 // ORPO: TRL's beta, the paper's lambda
  double label_smoothing = 0.0;      // sigmoid, robust, exo_pair, aot, aot_unpaired, simpo
  std::optional<double> rpo_alpha;   // adds rpo_alpha * NLL(chosen) to any loss
  double simpo_gamma = 0.5;          // TRL CPOConfig.simpo_gamma: margin in reward units
  double discopop_tau = 0.05;        // TRL DPOConfig.discopop_tau

  double weight(size_t index) const { return loss_weights.empty() ? 1.0 : loss_weights[index]; }
  bool has(LossType type) const;
};

// Throws duet::Error (one line) when the config is unusable: empty or mixed
// trainer families, weight count mismatch, beta <= 0, label_smoothing out of
// the range its losses accept, non-finite numbers.
void validate(const LossConfig& config);

// Builds a validated config from TRL-named options given as text, e.g.
// {{"loss_type", "sigmoid,sft"}, {"loss_weights", "1,0.2"}, {"beta", "0.1"}}.
// Keys: loss_type, loss_weights, beta, label_smoothing, rpo_alpha,
// simpo_gamma, discopop_tau. Unknown keys and malformed numbers fail.
LossConfig parse_config(const std::vector<std::pair<std::string, std::string>>& options);

// The same keys as a JSON object (loss_type: string or array of strings,
// loss_weights: array of numbers, rpo_alpha: number or null).
LossConfig config_from_json(const nlohmann::json& object);
nlohmann::json to_json(const LossConfig& config);

// True when some loss needs ref_chosen/ref_rejected (every DPOTrainer loss
// except sft; simpo and orpo are reference-free).
bool needs_reference(const LossConfig& config);

// True when a pair's loss depends on other pairs of the step (aot and
// aot_unpaired sort across the batch; bco_pair's running mean takes in the
// whole step): the trainer must have every log-prob of the step before any
// backward pass.
bool couples_pairs(const LossConfig& config);

// True when the loss contains an NLL term on the chosen response (sft,
// rpo_alpha, orpo).
bool uses_nll(const LossConfig& config);

}  // namespace duet::loss
