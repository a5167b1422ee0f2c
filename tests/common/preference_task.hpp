#pragma once
// A learnable synthetic preference task in TRL's pre-tokenized format, for
// training tests with tiny random models (vocabulary of 64): chosen responses
// use tokens 10..19, rejected ones 40..49, after a random prompt over the whole
// vocabulary, so DPO can learn it and held-out accuracy measures it.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

namespace duet::test {

inline void write_preference_task(const std::filesystem::path& file, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::ofstream out(file);
  for (int i = 0; i < n; ++i) {
    std::vector<int> prompt(static_cast<size_t>(uni(2, 12))), chosen(static_cast<size_t>(uni(1, 8))),
        rejected(static_cast<size_t>(uni(1, 8)));
    for (int& t : prompt) t = uni(1, 63);
    for (int& t : chosen) t = uni(10, 19);
    for (int& t : rejected) t = uni(40, 49);
    out << nlohmann::json{{"prompt_input_ids", prompt}, {"chosen_input_ids", chosen}, {"rejected_input_ids", rejected}}
               .dump()
        << "\n";
  }
}

}  // namespace duet::test
