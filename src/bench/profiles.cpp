#include "bench/profiles.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "util/error.hpp"

namespace duet::bench {

const std::vector<DatasetProfile>& dataset_profiles() {
  static const std::vector<DatasetProfile> profiles = {
      {"capybara", 1160, 1.59},    {"hh-rlhf", 186, 2.15},        {"metamath-dpo", 872, 3.91},
      {"tldr", 416, 11.14},        {"tulu-helpsteer", 775, 6.34}, {"ultrafeedback", 409, 0.42},
  };
  return profiles;
}

const DatasetProfile& find_profile(std::string_view name) {
  for (const auto& p : dataset_profiles())
    if (p.name == name) return p;
  std::string known;
  for (const auto& p : dataset_profiles()) known += (known.empty() ? "" : ", ") + p.name;
  fail("unknown dataset profile '{}': known profiles are {}", name, known);
}

std::vector<layout::TokenizedExample> synthetic_examples(const DatasetProfile& p, int64_t count, int64_t vocab,
                                                         uint64_t seed) {
  if (vocab <= 101) fail("synthetic examples need a vocabulary larger than 101 (ids start at 100)");
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_int_distribution<int64_t> id(100, vocab - 1);
  auto ids = [&](int64_t n) {
    std::vector<layout::TokenId> v(static_cast<size_t>(n));
    for (auto& t : v) t = static_cast<layout::TokenId>(id(rng));
    return v;
  };
  std::vector<layout::TokenizedExample> out;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t n = std::max<int64_t>(3, std::llround(p.median_length * std::exp(0.5 * normal(rng))));
    const int64_t prompt = std::min(n - 1, std::max<int64_t>(1, std::llround(n * p.ratio / (1.0 + p.ratio))));
    const int64_t chosen = n - prompt;
    const int64_t rejected = std::max<int64_t>(1, std::llround(chosen * std::exp(0.3 * normal(rng))));
    layout::TokenizedExample e;
    e.index = i;
    e.prompt = ids(prompt);
    e.responses = {ids(chosen), ids(rejected)};
    while (e.responses[1] == e.responses[0]) e.responses[1] = ids(rejected);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace duet::bench
