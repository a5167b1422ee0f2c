// LPT rank balancing: every row once, loads within the largest row of even.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "layout/rank_balance.hpp"
#include "random_examples.hpp"
#include "util/error.hpp"

namespace duet::layout {
namespace {

using testing::fresh_seed;
using testing::seed_trace;
using testing::uniform;

TEST(RankBalance, EveryRowOnceAndLoadsWithinTheLargestRow) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed_trace(seed));
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 300; ++trial) {
    const int ranks = static_cast<int>(uniform(rng, 1, 8));
    std::vector<int64_t> tokens(uniform(rng, 0, 40));
    for (auto& t : tokens) t = uniform(rng, 1, 8192);
    const auto assigned = balance_ranks(tokens, ranks);
    ASSERT_EQ(assigned.size(), static_cast<size_t>(ranks));

    std::vector<int> count(tokens.size(), 0);
    std::vector<int64_t> loads;
    for (const auto& rows : assigned) {
      EXPECT_TRUE(std::is_sorted(rows.begin(), rows.end()));
      int64_t load = 0;
      for (size_t r : rows) {
        ASSERT_LT(r, tokens.size());
        ++count[r];
        load += tokens[r];
      }
      loads.push_back(load);
    }
    for (size_t r = 0; r < tokens.size(); ++r) EXPECT_EQ(count[r], 1) << "row " << r;

    const int64_t total = std::accumulate(tokens.begin(), tokens.end(), int64_t{0});
    const int64_t largest = tokens.empty() ? 0 : *std::max_element(tokens.begin(), tokens.end());
    const int64_t max_load = *std::max_element(loads.begin(), loads.end());
    const int64_t min_load = *std::min_element(loads.begin(), loads.end());
    EXPECT_LE(max_load - min_load, largest);
    EXPECT_LE(max_load * ranks, total + largest * ranks);  // max <= total/R + largest
    EXPECT_EQ(balance_ranks(tokens, ranks), assigned);
  }
}

// LPT from its definition, in quadratic time.
std::vector<std::vector<size_t>> reference_lpt(const std::vector<int64_t>& tokens, int ranks) {
  std::vector<size_t> order(tokens.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return tokens[a] > tokens[b]; });
  std::vector<std::vector<size_t>> assigned(ranks);
  std::vector<int64_t> load(ranks, 0);
  for (size_t row : order) {
    const auto least = std::min_element(load.begin(), load.end()) - load.begin();  // first min
    assigned[least].push_back(row);
    load[least] += tokens[row];
  }
  for (auto& rows : assigned) std::sort(rows.begin(), rows.end());
  return assigned;
}

TEST(RankBalance, MatchesASlowReference) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed_trace(seed));
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 300; ++trial) {
    const int ranks = static_cast<int>(uniform(rng, 1, 8));
    std::vector<int64_t> tokens(uniform(rng, 0, 40));
    const int64_t spread = uniform(rng, 0, 1) ? 8192 : 3;  // ties too
    for (auto& t : tokens) t = uniform(rng, 1, spread);
    EXPECT_EQ(balance_ranks(tokens, ranks), reference_lpt(tokens, ranks));
  }
}

TEST(RankBalance, RejectsZeroRanks) {
  const std::vector<int64_t> tokens{1, 2};
  EXPECT_THROW(balance_ranks(tokens, 0), Error);
}

}  // namespace
}  // namespace duet::layout
