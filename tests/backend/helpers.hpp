#pragma once
// Shared test helpers for the backend kernels: seeded randomness, poisoning,
// closeness checks, and random token forests (BRIEF §3) for attention.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>

#include "common/seeds.hpp"
#include <string>
#include <vector>

namespace duet::test {

// Uniform values in [lo, hi). Generated in float and widened, so a float and
// a double run of an op can start from exactly the same inputs.
inline std::vector<double> random_values(std::mt19937_64& rng, size_t n, double lo = -1,
                                         double hi = 1) {
  std::uniform_real_distribution<float> dist(static_cast<float>(lo), static_cast<float>(hi));
  std::vector<double> v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

inline int64_t random_int(std::mt19937_64& rng, int64_t lo, int64_t hi) {  // [lo, hi]
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

template <typename T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

template <typename T>
void poison(std::vector<T>& v) {
  std::fill(v.begin(), v.end(), std::numeric_limits<T>::quiet_NaN());
}

template <typename T>
std::vector<T> poisoned(size_t n) {
  return std::vector<T>(n, std::numeric_limits<T>::quiet_NaN());
}

template <typename T>
bool all_finite(const std::vector<T>& v) {
  for (T x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

inline double rms(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return v.empty() ? 0 : std::sqrt(s / static_cast<double>(v.size()));
}

// Element-wise |actual - expected| <= rtol * (|expected| + rms(expected)):
// relative where values are large, and relative to the tensor's typical size
// where an element happens to be near zero (cancellation makes a pure
// element-wise relative test meaningless there). Reports the first failures.
template <typename A>
void expect_close(const std::vector<A>& actual, const std::vector<double>& expected, double rtol,
                  const std::string& name) {
  ASSERT_EQ(actual.size(), expected.size()) << name;
  const double floor = rms(expected);
  int reported = 0;
  size_t bad = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double a = static_cast<double>(actual[i]), e = expected[i];
    const bool ok = std::abs(a - e) <= rtol * (std::abs(e) + floor);  // false for NaN
    if (!ok) {
      ++bad;
      if (reported++ < 5)
        ADD_FAILURE() << name << "[" << i << "] = " << a << ", expected " << e
                      << " (diff " << std::abs(a - e) << ", tolerance "
                      << rtol * (std::abs(e) + floor) << ")";
    }
  }
  EXPECT_EQ(bad, 0u) << name << ": " << bad << " of " << actual.size() << " elements differ";
}

template <typename T>
void expect_bitwise_equal(const std::vector<T>& a, const std::vector<T>& b,
                          const std::string& name) {
  ASSERT_EQ(a.size(), b.size()) << name;
  size_t bad = 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0 && bad++ < 5)
      ADD_FAILURE() << name << "[" << i << "]: " << a[i] << " vs " << b[i];
  EXPECT_EQ(bad, 0u) << name;
}

// A row of the token forest: trees laid out depth-first and packed, then
// padding (each pad token sees only itself, position 0), as docs/layout.md.
struct Forest {
  std::vector<int32_t> visible_until;
  std::vector<int32_t> position;
  int64_t used = 0;  // tokens before the padding
  int64_t size() const { return static_cast<int64_t>(visible_until.size()); }
};

struct ForestShape {
  int64_t max_segment = 24;  // tokens per segment: 1..max_segment
  int max_depth = 2;         // 1: prompt + responses; 2: also multi-turn branches
  double pad_fraction = 0.1; // roughly how much of the row stays padding
};

Forest random_forest(std::mt19937_64& rng, int64_t n_tokens, const ForestShape& shape = {});

}  // namespace duet::test
