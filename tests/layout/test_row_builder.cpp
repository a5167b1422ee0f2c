// Row arrays against their definitions, segment order, and input errors.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "layout/pack_rows.hpp"
#include "layout/row_builder.hpp"
#include "random_examples.hpp"
#include "util/error.hpp"

namespace duet::layout {
namespace {

using testing::fresh_seed;
using testing::random_examples;
using testing::seed_trace;
using testing::uniform;

// The segment sequence a layout must produce for an example, written out.
std::vector<std::pair<int32_t, std::vector<TokenId>>> expected_segments(const TokenizedExample& e,
                                                                        Layout layout) {
  std::vector<std::pair<int32_t, std::vector<TokenId>>> out;
  if (layout == Layout::shared) out.push_back({kPromptSegment, e.prompt});
  for (size_t r = 0; r < e.responses.size(); ++r) {
    if (layout == Layout::paired) out.push_back({kPromptSegment, e.prompt});
    out.push_back({static_cast<int32_t>(r), e.responses[r]});
  }
  return out;
}

class RowArrays : public ::testing::TestWithParam<Layout> {};

TEST_P(RowArrays, FollowTheirDefinitions) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed_trace(seed));
  std::mt19937_64 rng(seed);
  const Layout layout = GetParam();
  for (int trial = 0; trial < 20; ++trial) {
    const auto examples = random_examples(rng, uniform(rng, 1, 6));
    RowBuilder builder(layout);
    int64_t expected_used = 0;
    for (const auto& e : examples) {
      builder.add(e);
      expected_used += testing::reference_unit_tokens(shape_of(e), layout);
    }
    const int64_t capacity = expected_used + uniform(rng, 0, 10);
    const TokenId pad = 99;
    const Row row = builder.finish(capacity, pad);
    ASSERT_EQ(row.used, expected_used);
    ASSERT_EQ(row.size(), capacity);
    ASSERT_EQ(row.position.size(), row.token.size());
    ASSERT_EQ(row.visible_until.size(), row.token.size());
    ASSERT_EQ(row.parent.size(), row.token.size());

    // Segments: the examples in order, each in its layout's segment order.
    size_t s = 0;
    for (const auto& e : examples) {
      for (const auto& [response, tokens] : expected_segments(e, layout)) {
        ASSERT_LT(s, row.segments.size());
        const Segment& seg = row.segments[s++];
        EXPECT_EQ(seg.example, e.index);
        EXPECT_EQ(seg.response, response);
        EXPECT_EQ(std::vector<TokenId>(row.token.begin() + seg.begin, row.token.begin() + seg.end),
                  tokens);
      }
    }
    ASSERT_EQ(s, row.segments.size());

    // visible_until: tree end for prompt tokens (a tree runs to the next
    // prompt segment or to `used`), segment end for response tokens.
    for (size_t k = 0; k < row.segments.size(); ++k) {
      const Segment& seg = row.segments[k];
      int32_t bound = seg.end;
      if (seg.response == kPromptSegment) {
        bound = row.used;
        for (size_t m = k + 1; m < row.segments.size(); ++m)
          if (row.segments[m].response == kPromptSegment) {
            bound = row.segments[m].begin;
            break;
          }
      }
      for (int32_t i = seg.begin; i < seg.end; ++i) EXPECT_EQ(row.visible_until[i], bound) << i;
    }

    // position = depth: the number of parent steps to the tree's root, and
    // the parent path spells the root path (prompt, then the response prefix).
    for (int32_t i = 0; i < row.used; ++i) {
      int32_t depth = 0;
      for (int32_t p = row.parent[i]; p != -1; p = row.parent[p]) {
        ASSERT_LT(p, i);
        ++depth;
      }
      EXPECT_EQ(row.position[i], depth) << i;
    }

    for (int32_t i = row.used; i < row.size(); ++i) {
      EXPECT_EQ(row.token[i], pad);
      EXPECT_EQ(row.position[i], 0);
      EXPECT_EQ(row.visible_until[i], i + 1);
      EXPECT_EQ(row.parent[i], -1);
    }
  }
}

TEST_P(RowArrays, BuilderIsEmptyAfterFinish) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed_trace(seed));
  std::mt19937_64 rng(seed);
  const auto examples = random_examples(rng, 2);
  RowBuilder builder(GetParam());
  builder.add(examples[0]);
  builder.finish(0, 0);
  EXPECT_EQ(builder.size(), 0);
  builder.add(examples[1]);
  const Row second = builder.finish(0, 0);
  ASSERT_FALSE(second.segments.empty());
  EXPECT_EQ(second.segments.front().example, examples[1].index);
  EXPECT_EQ(second.segments.front().begin, 0);
}

INSTANTIATE_TEST_SUITE_P(Layouts, RowArrays, ::testing::Values(Layout::shared, Layout::paired),
                         [](const auto& info) { return std::string(layout_name(info.param)); });

TEST(RowErrors, InvalidExamplesAreRejectedWithTheirIndex) {
  TokenizedExample one_response{41, {1, 2}, {{3}}};
  TokenizedExample empty_prompt{42, {}, {{3}, {4}}};
  TokenizedExample empty_response{43, {1}, {{3}, {}}};
  for (const auto* e : {&one_response, &empty_prompt, &empty_response}) {
    RowBuilder builder(Layout::shared);
    try {
      builder.add(*e);
      ADD_FAILURE() << "example " << e->index << " was accepted";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find(std::to_string(e->index)), std::string::npos)
          << error.what();
    }
  }
}

TEST(RowErrors, AnExampleLargerThanTheCapacityIsReported) {
  // prompt 5, responses 4 and 3: shared 12 tokens, paired 17.
  TokenizedExample small{7, {1}, {{2}, {3}}};
  TokenizedExample big{1234, {1, 1, 1, 1, 1}, {{2, 2, 2, 2}, {3, 3, 3}}};
  const std::vector<TokenizedExample> examples{small, big};
  EXPECT_NO_THROW(pack_examples(examples, Layout::shared, 12, 0));
  EXPECT_NO_THROW(pack_examples(examples, Layout::paired, 17, 0));
  for (auto [layout, capacity] : {std::pair{Layout::shared, 11}, std::pair{Layout::paired, 16}}) {
    try {
      pack_examples(examples, layout, capacity, 0);
      ADD_FAILURE() << "no error for capacity " << capacity;
    } catch (const Error& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find("1234"), std::string::npos) << message;
      EXPECT_NE(message.find(layout == Layout::shared ? " 12 " : " 17 "), std::string::npos)
          << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
    }
  }
}

TEST(RowErrors, FinishRejectsACapacityBelowTheContent) {
  RowBuilder builder(Layout::shared);
  builder.add(TokenizedExample{0, {1, 2}, {{3}, {4}}});
  EXPECT_THROW(builder.finish(3, 0), Error);
}

TEST(LayoutNames, RoundTripAndRejectUnknown) {
  for (Layout l : {Layout::paired, Layout::shared}) EXPECT_EQ(parse_layout(layout_name(l)), l);
  EXPECT_THROW(parse_layout("prefix"), Error);
}

}  // namespace
}  // namespace duet::layout
