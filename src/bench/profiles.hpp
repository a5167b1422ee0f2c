#pragma once
// The six dataset profiles of the prefix-sharing paper (median length of
// prompt + one response, prompt/completion ratio r) and synthetic examples
// drawn from them, as scripts/make_synthetic_data.py draws them: per example a
// length n ~ median · exp(N(0, 0.5)), the prompt round(n·r/(1+r)) tokens, the
// chosen response the rest, the rejected one ~ chosen · exp(N(0, 0.3)); ids
// uniform in [100, vocab). (Same distribution, not the same draws: pass the
// script's file with --data to compare with another tool on identical data.)
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "layout/example.hpp"

namespace duet::bench {

struct DatasetProfile {
  std::string name;
  double median_length = 0;
  double ratio = 0;  // prompt / completion tokens
};

const std::vector<DatasetProfile>& dataset_profiles();
const DatasetProfile& find_profile(std::string_view name);  // duet::fail naming the known ones

std::vector<layout::TokenizedExample> synthetic_examples(const DatasetProfile& profile, int64_t count, int64_t vocab,
                                                         uint64_t seed);

}  // namespace duet::bench
