// layout_stats against the tokens of rows actually built.
#include <gtest/gtest.h>

#include <vector>

#include "layout/layout_stats.hpp"
#include "layout/pack_rows.hpp"
#include "random_examples.hpp"
#include "util/error.hpp"

namespace duet::layout {
namespace {

using testing::fresh_seed;
using testing::seed_trace;
using testing::uniform;

// Builds the rows group by group and counts what they hold.
LayoutTotals count_built_rows(const std::vector<TokenizedExample>& examples, Layout layout,
                              int64_t pack_tokens, size_t group) {
  LayoutTotals totals;
  if (group == 0) group = std::max<size_t>(examples.size(), 1);
  for (size_t begin = 0; begin < examples.size(); begin += group) {
    const size_t end = std::min(examples.size(), begin + group);
    const std::span<const TokenizedExample> part(examples.data() + begin, end - begin);
    for (const Row& row : pack_examples(part, layout, pack_tokens, 0)) {
      ++totals.rows;
      totals.tokens += row.used;
      totals.padding += row.size() - row.used;
    }
  }
  return totals;
}

void expect_equal(const LayoutTotals& a, const LayoutTotals& b) {
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.padding, b.padding);
  EXPECT_EQ(a.total(), b.total());
}

TEST(LayoutStats, MatchesTheRowsActuallyBuilt) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed_trace(seed));
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 20; ++trial) {
    const auto examples = testing::random_examples(rng, uniform(rng, 1, 80));
    std::vector<ExampleShape> shapes;
    for (const auto& e : examples) shapes.push_back(shape_of(e));
    const int64_t pack = uniform(rng, 140, 1000);
    const auto group = static_cast<size_t>(uniform(rng, 0, 20));
    SCOPED_TRACE("pack " + std::to_string(pack) + " group " + std::to_string(group));

    const LayoutStats stats = layout_stats(shapes, pack, static_cast<int64_t>(group));
    expect_equal(stats.paired_unpacked, count_built_rows(examples, Layout::paired, 0, group));
    expect_equal(stats.paired_packed, count_built_rows(examples, Layout::paired, pack, group));
    expect_equal(stats.shared_unpacked, count_built_rows(examples, Layout::shared, 0, group));
    expect_equal(stats.shared_packed, count_built_rows(examples, Layout::shared, pack, group));

    // Sharing saves exactly the (k-1) prompt copies per example.
    int64_t saved = 0;
    for (const auto& s : shapes)
      saved += (static_cast<int64_t>(s.responses.size()) - 1) * s.prompt;
    EXPECT_EQ(stats.paired_unpacked.tokens - stats.shared_unpacked.tokens, saved);
    EXPECT_EQ(stats.paired_packed.tokens, stats.paired_unpacked.tokens);
  }
}

TEST(LayoutStats, NeedsAPackSize) {
  const std::vector<ExampleShape> shapes{{3, {2, 2}}};
  EXPECT_THROW(layout_stats(shapes, 0), Error);
}

}  // namespace
}  // namespace duet::layout
