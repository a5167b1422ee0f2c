// Dataset statistics: nearest-rank percentiles, the median ratio, the layout
// totals (as layout_stats gives them), and the (2r+2)/(r+2) shared/paired
// token ratio when chosen and rejected are equally long.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "data/stats.hpp"
#include "helpers.hpp"
#include "util/error.hpp"

namespace duet::data {
namespace {

using testing::fresh_seed;
using testing::seed_trace;
using testing::uniform;

TEST(Stats, PercentilesAreNearestRank) {
  for (int round = 0; round < 200; ++round) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed_trace(seed));
    std::mt19937_64 rng(seed);
    std::vector<int64_t> v(static_cast<size_t>(uniform(rng, 1, 300)));
    for (auto& x : v) x = uniform(rng, 0, 1000);
    const LengthSummary s = summarize(v);
    std::sort(v.begin(), v.end());
    // Nearest rank: the smallest value with at least p% of the values <= it.
    auto brute = [&](double p) {
      for (int64_t x : v) {
        const double at_most = static_cast<double>(std::count_if(v.begin(), v.end(), [&](int64_t y) { return y <= x; }));
        if (at_most * 100.0 >= p * static_cast<double>(v.size()) - 1e-9) return x;
      }
      return v.back();
    };
    EXPECT_EQ(s.p10, brute(10));
    EXPECT_EQ(s.p25, brute(25));
    EXPECT_EQ(s.p50, brute(50));
    EXPECT_EQ(s.p75, brute(75));
    EXPECT_EQ(s.p90, brute(90));
    EXPECT_EQ(s.p99, brute(99));
    EXPECT_EQ(s.min, v.front());
    EXPECT_EQ(s.max, v.back());
    EXPECT_EQ(s.count, static_cast<int64_t>(v.size()));
  }
}

TEST(Stats, SharedOverPairedMatchesTheFormulaForEqualResponses) {
  for (int round = 0; round < 100; ++round) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed_trace(seed));
    std::mt19937_64 rng(seed);
    const int64_t r = uniform(rng, 1, 12);  // prompt = r x response length, exactly
    std::vector<layout::ExampleShape> shapes(static_cast<size_t>(uniform(rng, 1, 200)));
    for (auto& s : shapes) {
      const int64_t L = uniform(rng, 1, 60);
      s.prompt = r * L;
      s.responses = {L, L};
    }
    const DatasetStats st = compute_stats(shapes, 0);
    EXPECT_DOUBLE_EQ(st.median_ratio, static_cast<double>(r));
    const double formula = (2.0 * r + 2) / (r + 2);
    EXPECT_DOUBLE_EQ(st.ratio_ceiling, formula);
    const double measured = static_cast<double>(st.layouts.paired_unpacked.total()) /
                            static_cast<double>(st.layouts.shared_unpacked.total());
    EXPECT_NEAR(measured, formula, 1e-12);
  }
}

TEST(Stats, TotalsAreLayoutStatsAndAutomaticPackingFitsEverything) {
  for (int round = 0; round < 50; ++round) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed_trace(seed));
    std::mt19937_64 rng(seed);
    std::vector<layout::ExampleShape> shapes(static_cast<size_t>(uniform(rng, 1, 100)));
    int64_t longest = 0;
    for (auto& s : shapes) {
      s.prompt = uniform(rng, 1, 300);
      s.responses.resize(static_cast<size_t>(uniform(rng, 2, 3)));
      for (auto& l : s.responses) l = uniform(rng, 1, 300);
      longest = std::max(longest, layout::unit_tokens(s, layout::Layout::paired));
    }
    const DatasetStats automatic = compute_stats(shapes, 0);
    EXPECT_TRUE(automatic.pack_tokens_automatic);
    EXPECT_EQ(automatic.pack_tokens % 128, 0);
    EXPECT_GE(automatic.pack_tokens, longest);
    EXPECT_LT(automatic.pack_tokens - 128, longest);
    const int64_t pack = longest + uniform(rng, 0, 2000);
    const DatasetStats st = compute_stats(shapes, pack);
    const layout::LayoutStats expect = layout::layout_stats(shapes, pack);
    EXPECT_EQ(st.layouts.paired_packed.total(), expect.paired_packed.total());
    EXPECT_EQ(st.layouts.shared_packed.total(), expect.shared_packed.total());
    EXPECT_EQ(st.layouts.paired_unpacked.total(), expect.paired_unpacked.total());
    EXPECT_EQ(st.layouts.shared_unpacked.total(), expect.shared_unpacked.total());
    // The JSON carries the required keys with these values.
    DataReport report;
    report.kept = static_cast<int64_t>(shapes.size());
    const auto j = stats_json(report, &st);
    for (const char* key : {"examples", "dropped", "tokens_paired", "tokens_shared", "tokens_paired_packed",
                            "tokens_shared_packed"})
      EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_EQ(j["tokens_shared_packed"].get<int64_t>(), expect.shared_packed.total());
    EXPECT_FALSE(stats_text(report, &st).empty());
  }
  EXPECT_THROW(compute_stats({}, 0), Error);
}

}  // namespace
}  // namespace duet::data
