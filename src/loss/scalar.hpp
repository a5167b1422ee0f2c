#pragma once
// Numerically stable scalar helpers shared by the loss terms (internal header).
// Losses see log-prob sums of hundreds of tokens, so exp() of a raw argument
// can overflow; every log-sigmoid goes through softplus instead.
#include <cmath>

namespace duet::loss::detail {

// log(1 + e^x) without overflow for large x or loss of precision for small x.
inline double softplus(double x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

inline double log_sigmoid(double x) { return -softplus(-x); }

inline double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

// log(1 - e^x) for x <= 0, branching at -ln 2 like TRL's ORPO (log1mexp) so
// neither form cancels.
inline double log1mexp(double x) {
  constexpr double kMinusLn2 = -0.6931471805599453;
  return x < kMinusLn2 ? std::log1p(-std::exp(x)) : std::log(-std::expm1(x));
}

}  // namespace duet::loss::detail
