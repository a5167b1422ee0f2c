// Every formula follows TRL (see docs/losses.md for the version and the few
// deliberate departures). Variables: c, r = chosen/rejected log-ratios
// (policy - reference); z = the argument of the sigmoid-type losses.
#include "loss/terms.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "loss/scalar.hpp"

namespace duet::loss::detail {
namespace {

struct ValueSlope {
  double value, slope;  // f(z) and f'(z)
};

// cDPO-smoothed logistic loss -(1-e) log s(z) - e log s(-z), used by sigmoid,
// aot, aot_unpaired and simpo.
ValueSlope smoothed_logistic(double z, double e) {
  return {-(1 - e) * log_sigmoid(z) - e * log_sigmoid(-z), -(1 - e) * sigmoid(-z) + e * sigmoid(z)};
}

double chosen_logratio(const PairLogps& p) { return p.policy_chosen - p.ref_chosen; }
double rejected_logratio(const PairLogps& p) { return p.policy_rejected - p.ref_rejected; }

// Terms that depend on one pair only.
template <typename F>
void pointwise(double weight, std::span<const PairLogps> pairs, std::span<Grad> out, F&& term) {
  for (size_t i = 0; i < pairs.size(); ++i) {
    const Grad g = term(pairs[i]);
    out[i].loss += weight * g.loss;
    out[i].d_chosen += weight * g.d_chosen;
    out[i].d_rejected += weight * g.d_rejected;
  }
}

// A term f(z) with z = beta * (c - r): derivative beta f' and -beta f'.
Grad of_margin(double beta, ValueSlope f) { return {f.value, beta * f.slope, -beta * f.slope}; }

// Indices ordered by value, ties by index, so the order is deterministic.
std::vector<size_t> argsort(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  return order;
}

// aot: sort policy log-ratio margins and reference margins independently and
// pair them by rank. The term at rank i belongs to the pair holding rank i
// among the policy margins (the reference side is a constant).
void add_aot(double w, const LossConfig& cfg, std::span<const PairLogps> pairs, std::span<Grad> out) {
  std::vector<double> policy(pairs.size()), ref(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    policy[i] = pairs[i].policy_chosen - pairs[i].policy_rejected;
    ref[i] = pairs[i].ref_chosen - pairs[i].ref_rejected;
  }
  const std::vector<size_t> order = argsort(policy);
  std::sort(ref.begin(), ref.end());
  for (size_t rank = 0; rank < pairs.size(); ++rank) {
    const size_t j = order[rank];
    const ValueSlope f = smoothed_logistic(cfg.beta * (policy[j] - ref[rank]), cfg.label_smoothing);
    out[j].loss += w * f.value;
    out[j].d_chosen += w * cfg.beta * f.slope;
    out[j].d_rejected -= w * cfg.beta * f.slope;
  }
}

// aot_unpaired: sort chosen and rejected log-ratios independently; the term at
// rank i involves the chosen response of one pair and the rejected response of
// another. Its value is booked to the pair owning that chosen response.
void add_aot_unpaired(double w, const LossConfig& cfg, std::span<const PairLogps> pairs, std::span<Grad> out) {
  std::vector<double> c(pairs.size()), r(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    c[i] = chosen_logratio(pairs[i]);
    r[i] = rejected_logratio(pairs[i]);
  }
  const std::vector<size_t> oc = argsort(c), orj = argsort(r);
  for (size_t rank = 0; rank < pairs.size(); ++rank) {
    const ValueSlope f = smoothed_logistic(cfg.beta * (c[oc[rank]] - r[orj[rank]]), cfg.label_smoothing);
    out[oc[rank]].loss += w * f.value;
    out[oc[rank]].d_chosen += w * cfg.beta * f.slope;
    out[orj[rank]].d_rejected -= w * cfg.beta * f.slope;
  }
}

}  // namespace

void add_term(LossType type, double w, const LossConfig& cfg, double bco_delta, std::span<const PairLogps> pairs,
              std::span<Grad> out) {
  const double beta = cfg.beta, eps = cfg.label_smoothing;
  switch (type) {
    case LossType::sigmoid:
      return pointwise(w, pairs, out, [&](const PairLogps& p) {
        return of_margin(beta, smoothed_logistic(beta * (chosen_logratio(p) - rejected_logratio(p)), eps));
      });
    case LossType::hinge:
      return pointwise(w, pairs, out, [&](const PairLogps& p) {
        const double z = beta * (chosen_logratio(p) - rejected_logratio(p));
        // relu(1 - z); at the kink the slope is 0, as torch's relu backward.
        return of_margin(beta, 1 - z > 0 ? ValueSlope{1 - z, -1} : ValueSlope{0, 0});
      });
    case LossType::ipo:
      return pointwise(w, pairs, out, [&](const PairLogps& p) {
        // Per-token log-ratios (TRL divides by the response lengths).
        const double lc = length(p.chosen_tokens), lr = length(p.rejected_tokens);
        const double e = chosen_logratio(p) / lc - rejected_logratio(p) / lr - 1 / (2 * beta);
        return Grad{e * e, 2 * e / lc, -2 * e / lr};
      });
    case LossType::exo_pair:
      return pointwise(w, pairs, out, [&](const PairLogps& p) {
        // KL(softmax over {chosen, rejected} of beta*log-ratios || [1-eps, eps]).
        const double z = beta * (chosen_logratio(p) - rejected_logratio(p));
        const double s = sigmoid(z), t = sigmoid(-z);
        const double lp = std::log1p(-eps), ln = std::log(eps);
        const double value = s * (log_sigmoid(z) - lp) + t * (log_sigmoid(-z) - ln);
        // d/dz simplifies because log s(z) - log s(-z) = z.
        return of_margin(beta, {value, s * t * (z - lp + ln)});
      });
    case LossType::nca_pair:
      return pointwise(w, pairs, out, [&](const PairLogps& p) {
        const double a = beta * chosen_logratio(p), b = beta * rejected_logratio(p);
        const double value = -log_sigmoid(a) - 0.5 * log_sigmoid(-a) - 0.5 * log_sigmoid(-b);
        return Grad{value, beta * (-sigmoid(-a) + 0.5 * sigmoid(a)), beta * 0.5 * sigmoid(b)};
      });
    case LossType::robust:
      return pointwise(w, pairs, out, [&](const PairLogps& p) {
        const double z = beta * (chosen_logratio(p) - rejected_logratio(p));
        const double k = 1 / (1 - 2 * eps);
        return of_margin(beta, {k * (-(1 - eps) * log_sigmoid(z) + eps * log_sigmoid(-z)),
                                k * (-(1 - eps) * sigmoid(-z) - eps * sigmoid(z))});
      });
    case LossType::bco_pair:
      return pointwise(w, pairs, out, [&](const PairLogps& p) {
        const double a = beta * chosen_logratio(p) - bco_delta, b = beta * rejected_logratio(p) - bco_delta;
        return Grad{-log_sigmoid(a) - log_sigmoid(-b), -beta * sigmoid(-a), beta * sigmoid(b)};
      });
    case LossType::sppo_hard:
      return pointwise(w, pairs, out, [&](const PairLogps& p) {
        const double a = chosen_logratio(p) - 0.5 / beta, b = rejected_logratio(p) + 0.5 / beta;
        return Grad{a * a + b * b, 2 * a, 2 * b};
      });
    case LossType::aot:
      return add_aot(w, cfg, pairs, out);
    case LossType::aot_unpaired:
      return add_aot_unpaired(w, cfg, pairs, out);
    case LossType::apo_zero:
      return pointwise(w, pairs, out, [&](const PairLogps& p) {
        const double sc = sigmoid(beta * chosen_logratio(p)), sr = sigmoid(beta * rejected_logratio(p));
        return Grad{1 - sc + sr, -beta * sc * (1 - sc), beta * sr * (1 - sr)};
      });
    case LossType::apo_down:
      return pointwise(w, pairs, out, [&](const PairLogps& p) {
        const double sc = sigmoid(beta * chosen_logratio(p));
        const double sm = sigmoid(beta * (chosen_logratio(p) - rejected_logratio(p)));
        const double dm = beta * sm * (1 - sm);
        return Grad{sc + 1 - sm, beta * sc * (1 - sc) - dm, dm};
      });
    case LossType::discopop:
      return pointwise(w, pairs, out, [&](const PairLogps& p) {
        // Log-ratio modulated loss: logistic (1-m) + exp(-z) m, m = s(z/tau).
        const double z = beta * (chosen_logratio(p) - rejected_logratio(p)), tau = cfg.discopop_tau;
        const double m = sigmoid(z / tau), dm = m * (1 - m) / tau;
        const double em = std::exp(-z + log_sigmoid(z / tau));  // exp(-z) m without inf * 0
        const double value = -log_sigmoid(z) * (1 - m) + em;
        const double slope = -sigmoid(-z) * (1 - m) + log_sigmoid(z) * dm - em + em * (1 - m) / tau;
        return of_margin(beta, {value, slope});
      });
    case LossType::sft:
      return pointwise(w, pairs, out, [&](const PairLogps& p) {
        return Grad{chosen_nll(p), -1 / length(p.chosen_tokens), 0};
      });
    case LossType::sigmoid_norm:
      return pointwise(w, pairs, out, [&](const PairLogps& p) {
        const double lc = length(p.chosen_tokens), lr = length(p.rejected_tokens);
        const double z = beta * (chosen_logratio(p) / lc - rejected_logratio(p) / lr);
        const double s = sigmoid(-z);
        return Grad{-log_sigmoid(z), -beta * s / lc, beta * s / lr};
      });
    case LossType::simpo:
      return pointwise(w, pairs, out, [&](const PairLogps& p) {
        // TRL CPOTrainer: logits = avg_c - avg_r - gamma/beta, loss on beta*logits.
        const double lc = length(p.chosen_tokens), lr = length(p.rejected_tokens);
        const double z = beta * (p.policy_chosen / lc - p.policy_rejected / lr) - cfg.simpo_gamma;
        const ValueSlope f = smoothed_logistic(z, eps);
        return Grad{f.value, beta * f.slope / lc, -beta * f.slope / lr};
      });
    case LossType::orpo:
      return pointwise(w, pairs, out, [&](const PairLogps& p) {
        // NLL(chosen) - beta log s(log odds), odds from per-token mean log-probs.
        const double lc = length(p.chosen_tokens), lr = length(p.rejected_tokens);
        const double u = p.policy_chosen / lc, v = p.policy_rejected / lr;
        const double odds = (u - v) - (log1mexp(u) - log1mexp(v));
        const double s = sigmoid(-odds);
        // d odds/du = -1/expm1(u), d odds/dv = 1/expm1(v).
        const double du = -1 + beta * s / std::expm1(u), dv = -beta * s / std::expm1(v);
        return Grad{-u - beta * log_sigmoid(odds), du / lc, dv / lr};
      });
  }
}

}  // namespace duet::loss::detail
