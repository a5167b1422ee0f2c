#include "loss/loss.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

#include "loss/scalar.hpp"
#include "loss/terms.hpp"
#include "util/error.hpp"

namespace duet::loss {
namespace {

void check_inputs(const LossConfig& config, std::span<const PairLogps> pairs, int64_t step_pairs) {
  if (pairs.empty()) fail("loss: a step needs at least one pair");
  if (step_pairs != 0 && step_pairs < static_cast<int64_t>(pairs.size()))
    fail("loss: step_pairs {} is smaller than the {} pairs given", step_pairs, pairs.size());
  if (step_pairs != 0 && step_pairs != static_cast<int64_t>(pairs.size()) && couples_pairs(config))
    fail("loss: these loss types couple the pairs of a step; compute them on the whole step at once");
  const bool ref = needs_reference(config);
  for (size_t i = 0; i < pairs.size(); ++i) {
    const PairLogps& p = pairs[i];
    if (!std::isfinite(p.policy_chosen) || !std::isfinite(p.policy_rejected))
      fail("loss: pair {} has a non-finite policy log-prob ({}, {}); training has diverged", i, p.policy_chosen,
           p.policy_rejected);
    if (ref && (!std::isfinite(p.ref_chosen) || !std::isfinite(p.ref_rejected)))
      fail("loss: pair {} has a non-finite reference log-prob ({}, {})", i, p.ref_chosen, p.ref_rejected);
    if (p.chosen_tokens < 0 || p.rejected_tokens < 0)
      fail("loss: pair {} has a negative token count ({}, {})", i, p.chosen_tokens, p.rejected_tokens);
  }
}

// simpo and orpo (other TRL trainers) report per-token mean log-probs and
// rewards without a reference; DPOTrainer losses report sums and log-ratios.
bool per_token_family(const LossConfig& c) { return c.has(LossType::simpo) || c.has(LossType::orpo); }

void fill_metrics(const LossConfig& config, std::span<const PairLogps> pairs, BatchResult& result) {
  const bool per_token = per_token_family(config), ref = needs_reference(config);
  const double n = static_cast<double>(pairs.size());
  double chosen = 0, rejected = 0, correct = 0, margin = 0, logp_c = 0, logp_r = 0, nll = 0;
  double log_odds_ratio = 0, log_odds = 0, logits_c = 0, logits_r = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const PairLogps& p = pairs[i];
    PairResult& out = result.pairs[i];
    double lc = p.policy_chosen, lr = p.policy_rejected;
    if (per_token) {
      lc /= detail::length(p.chosen_tokens);
      lr /= detail::length(p.rejected_tokens);
    }
    out.reward_chosen = config.beta * (ref ? lc - p.ref_chosen : lc);
    out.reward_rejected = config.beta * (ref ? lr - p.ref_rejected : lr);
    chosen += out.reward_chosen;
    rejected += out.reward_rejected;
    correct += out.reward_chosen > out.reward_rejected ? 1 : 0;
    margin += out.reward_chosen - out.reward_rejected;
    logp_c += lc;
    logp_r += lr;
    logits_c += p.chosen_logits;  // NaN, and so left out, unless every pair has them
    logits_r += p.rejected_logits;
    nll += detail::chosen_nll(p);
    if (config.has(LossType::orpo)) {
      const double odds = (lc - lr) - (detail::log1mexp(lc) - detail::log1mexp(lr));
      log_odds += odds;
      log_odds_ratio += detail::log_sigmoid(odds);
    }
  }
  auto& m = result.metrics;
  m["rewards/chosen"] = chosen / n;
  m["rewards/rejected"] = rejected / n;
  m["rewards/accuracies"] = correct / n;
  m["rewards/margins"] = margin / n;
  m["logps/chosen"] = logp_c / n;
  m["logps/rejected"] = logp_r / n;
  if (!std::isnan(logits_c) && !std::isnan(logits_r)) {
    m["logits/chosen"] = logits_c / n;
    m["logits/rejected"] = logits_r / n;
  }
  if (uses_nll(config)) m["nll_loss"] = nll / n;
  if (config.has(LossType::orpo)) {
    m["log_odds_ratio"] = log_odds_ratio / n;
    m["log_odds_chosen"] = log_odds / n;
  }
}

}  // namespace

BatchResult evaluate(const LossConfig& config, std::span<const PairLogps> pairs, const LossState& state,
                     int64_t step_pairs) {
  validate(config);
  check_inputs(config, pairs, step_pairs);
  const double n = static_cast<double>(step_pairs != 0 ? step_pairs : static_cast<int64_t>(pairs.size()));

  std::vector<detail::Grad> grads(pairs.size());
  for (size_t k = 0; k < config.loss_type.size(); ++k)
    detail::add_term(config.loss_type[k], config.weight(k), config, state.bco_reward_mean, pairs, grads);
  if (config.rpo_alpha) detail::add_term(LossType::sft, *config.rpo_alpha, config, 0, pairs, grads);

  BatchResult result;
  result.pairs.resize(pairs.size());
  double total = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    PairResult& out = result.pairs[i];
    out.loss = grads[i].loss;
    out.d_policy_chosen = grads[i].d_chosen / n;
    out.d_policy_rejected = grads[i].d_rejected / n;
    total += out.loss;
  }
  result.loss_mean = total / n;
  fill_metrics(config, pairs, result);
  return result;
}

BatchResult compute(const LossConfig& config, std::span<const PairLogps> pairs, LossState& state,
                    int64_t step_pairs) {
  validate(config);
  check_inputs(config, pairs, step_pairs);
  LossState next = state;
  if (config.has(LossType::bco_pair)) {
    // TRL: the mean of the step's 2N rewards beta*log-ratio enters the running
    // mean (one update per step) before the loss uses it.
    double sum = 0;
    for (const PairLogps& p : pairs)
      sum += config.beta * (p.policy_chosen - p.ref_chosen) + config.beta * (p.policy_rejected - p.ref_rejected);
    const double step_mean = sum / (2.0 * static_cast<double>(pairs.size()));
    next.bco_steps += 1;
    next.bco_reward_mean += (step_mean - next.bco_reward_mean) / static_cast<double>(next.bco_steps);
  }
  BatchResult result = evaluate(config, pairs, next, step_pairs);
  state = next;
  return result;
}

nlohmann::json to_json(const LossState& s) {
  return {{"bco_reward_mean", s.bco_reward_mean}, {"bco_steps", s.bco_steps}};
}

LossState state_from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("bco_reward_mean") || !j.contains("bco_steps") ||
      !j["bco_reward_mean"].is_number() || !j["bco_steps"].is_number_integer())
    fail("loss state: expected {{\"bco_reward_mean\": number, \"bco_steps\": integer}}, got {}", j.dump());
  LossState s;
  s.bco_reward_mean = j["bco_reward_mean"].get<double>();
  s.bco_steps = j["bco_steps"].get<int64_t>();
  if (!std::isfinite(s.bco_reward_mean) || s.bco_steps < 0)
    fail("loss state: bco_reward_mean must be finite and bco_steps >= 0, got {}", j.dump());
  return s;
}

}  // namespace duet::loss
