#pragma once
// Shared helpers for the layout tests: fresh seeds and random examples.
#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "common/seeds.hpp"
#include "layout/example.hpp"
#include "layout/row.hpp"

namespace duet::layout {
// Readable parameter names in gtest failure messages.
inline void PrintTo(Layout layout, std::ostream* os) { *os << layout_name(layout); }
}  // namespace duet::layout

namespace duet::layout::testing {

using ::duet::test::fresh_seed;  // DUET_TEST_SEED=<n> replays a run

inline std::string seed_trace(uint64_t seed) { return "seed " + std::to_string(seed); }

inline int64_t uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {  // inclusive
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

struct ExampleLimits {
  int64_t max_prompt = 20;
  int64_t min_k = 2, max_k = 4;
  int64_t max_response = 15;
};

inline TokenizedExample random_example(std::mt19937_64& rng, int64_t index,
                                       const ExampleLimits& limits = {}) {
  auto token = [&] { return static_cast<TokenId>(uniform(rng, 0, 200000)); };
  TokenizedExample e;
  e.index = index;
  e.prompt.resize(uniform(rng, 1, limits.max_prompt));
  for (auto& t : e.prompt) t = token();
  e.responses.resize(uniform(rng, limits.min_k, limits.max_k));
  for (auto& r : e.responses) {
    r.resize(uniform(rng, 1, limits.max_response));
    for (auto& t : r) t = token();
  }
  return e;
}

// Indices are deliberately not 0..n-1, so code that confuses the example's
// index with its position in the input shows up.
inline std::vector<TokenizedExample> random_examples(std::mt19937_64& rng, size_t n,
                                                     const ExampleLimits& limits = {}) {
  std::vector<TokenizedExample> out;
  int64_t index = uniform(rng, 0, 1000);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(random_example(rng, index, limits));
    index += uniform(rng, 1, 5);
  }
  return out;
}

inline ExampleShape random_shape(std::mt19937_64& rng, const ExampleLimits& limits = {}) {
  ExampleShape s;
  s.prompt = uniform(rng, 1, limits.max_prompt);
  s.responses.resize(uniform(rng, limits.min_k, limits.max_k));
  for (auto& r : s.responses) r = uniform(rng, 1, limits.max_response);
  return s;
}

// Token count of an example in a layout, written out from the definition.
inline int64_t reference_unit_tokens(const ExampleShape& s, Layout layout) {
  int64_t total = layout == Layout::shared ? s.prompt : 0;
  for (int64_t r : s.responses) total += r + (layout == Layout::paired ? s.prompt : 0);
  return total;
}

}  // namespace duet::layout::testing
