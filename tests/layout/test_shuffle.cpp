// The seeded shuffle: the algorithm as specified, unbiased, seed- and
// epoch-dependent.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <numeric>
#include <vector>

#include "layout/shuffle.hpp"
#include "random_examples.hpp"

namespace duet::layout {
namespace {

using testing::fresh_seed;
using testing::seed_trace;
using testing::uniform;

TEST(Shuffle, Mt19937_64IsTheStandardEngine) {
  // [rand.predef]: the 10000th output of a default-constructed mt19937_64.
  std::mt19937_64 rng;
  rng.discard(9999);
  EXPECT_EQ(rng(), 9981545732273789042ULL);
}

// Fisher-Yates written from its textbook statement, with the rejection bound
// computed in 128-bit arithmetic instead of the library's modulo trick.
std::vector<size_t> reference_shuffle(size_t n, std::mt19937_64& rng) {
  std::vector<size_t> p(n);
  std::iota(p.begin(), p.end(), size_t{0});
  for (size_t i = n; i-- > 1;) {
    const unsigned __int128 range = static_cast<unsigned __int128>(1) << 64;
    const unsigned __int128 accept = range - range % (i + 1);  // draws below this are fair
    uint64_t x;
    do x = rng();
    while (x >= accept);
    std::swap(p[i], p[x % (i + 1)]);
  }
  return p;
}

TEST(Shuffle, FisherYatesMatchesTheTextbookAlgorithm) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed_trace(seed));
  std::mt19937_64 pick(seed);
  for (int trial = 0; trial < 50; ++trial) {
    const auto n = static_cast<size_t>(uniform(pick, 0, 500));
    const uint64_t s = pick();
    std::mt19937_64 a(s), b(s);
    std::vector<size_t> p(n);
    std::iota(p.begin(), p.end(), size_t{0});
    fisher_yates(p, a);
    EXPECT_EQ(p, reference_shuffle(n, b));
  }
}

TEST(Shuffle, UniformBelowRejectsTheBiasedTail) {
  // With bound = 3*2^62 a plain x % bound would give [0, 2^62) half the mass
  // instead of a third.
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed_trace(seed));
  std::mt19937_64 rng(seed);
  const uint64_t bound = 3ULL << 62;
  int low = 0;
  const int draws = 4000;
  for (int i = 0; i < draws; ++i) {
    const uint64_t x = uniform_below(rng, bound);
    ASSERT_LT(x, bound);
    low += x < (1ULL << 62);
  }
  EXPECT_NEAR(static_cast<double>(low) / draws, 1.0 / 3, 0.06);
  EXPECT_EQ(uniform_below(rng, 1), 0u);
}

TEST(Shuffle, AllOrdersOfThreeAreEquallyLikely) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed_trace(seed));
  std::mt19937_64 rng(seed);
  std::map<std::vector<size_t>, int> counts;
  const int draws = 60000;
  for (int i = 0; i < draws; ++i) {
    std::vector<size_t> p{0, 1, 2};
    fisher_yates(p, rng);
    ++counts[p];
  }
  ASSERT_EQ(counts.size(), 6u);
  for (const auto& [order, count] : counts) EXPECT_NEAR(count, draws / 6, 600);  // ~6.5 sigma
}

TEST(Shuffle, EpochPermutationsDependOnSeedAndEpoch) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed_trace(seed));
  const size_t n = 60;  // 60! orders: a chance collision is impossible in practice
  const auto base = epoch_permutation(n, seed, 0);
  std::vector<size_t> sorted = base;
  std::sort(sorted.begin(), sorted.end());
  std::vector<size_t> identity(n);
  std::iota(identity.begin(), identity.end(), size_t{0});
  EXPECT_EQ(sorted, identity);
  EXPECT_EQ(epoch_permutation(n, seed, 0), base);
  EXPECT_NE(epoch_permutation(n, seed, 1), base);
  EXPECT_NE(epoch_permutation(n, seed + 1, 0), base);
  EXPECT_NE(epoch_permutation(n, seed, 1), epoch_permutation(n, seed + 1, 0));
}

}  // namespace
}  // namespace duet::layout
