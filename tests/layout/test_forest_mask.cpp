// The central property: a packed, prefix-shared row attends and predicts
// exactly as the paired format [prompt | response] with plain causal attention.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "layout/dense_mask.hpp"
#include "layout/pack_rows.hpp"
#include "layout/targets.hpp"
#include "random_examples.hpp"

namespace duet::layout {
namespace {

using testing::fresh_seed;
using testing::random_examples;
using testing::seed_trace;
using testing::uniform;

// What a transformer layer sees of a token: its id and its RoPE position.
struct Key {
  TokenId token;
  int32_t position;
  bool operator==(const Key&) const = default;
};

void PrintTo(const Key& k, std::ostream* os) { *os << "(" << k.token << "@" << k.position << ")"; }

// The paired chain [prompt | response_r] as (id, position) per chain index.
std::vector<Key> paired_chain(const TokenizedExample& e, int32_t r) {
  std::vector<Key> chain;
  for (TokenId t : e.prompt) chain.push_back({t, static_cast<int32_t>(chain.size())});
  for (TokenId t : e.responses[r]) chain.push_back({t, static_cast<int32_t>(chain.size())});
  return chain;
}

Key key_at(const Row& row, int32_t i) { return {row.token[i], row.position[i]}; }

struct Coverage {
  int64_t rows_with_several_trees = 0;
  int64_t rows_with_padding = 0;
};

// Checks every token of every row against the paired reference; returns what
// the rows exercised. Each (example, response) must occur exactly once.
// (void, with an out-parameter, so that gtest's ASSERT_* can return.)
void check_rows_against_paired(const std::vector<Row>& rows,
                               const std::vector<TokenizedExample>& examples,
                               Coverage& coverage) {
  std::map<int64_t, const TokenizedExample*> by_index;
  for (const auto& e : examples) by_index[e.index] = &e;
  std::set<std::pair<int64_t, int32_t>> seen;

  for (const Row& row : rows) {
    const int32_t T = row.size();
    const std::vector<uint8_t> mask = dense_mask(row);
    auto keys_of = [&](int32_t i) {
      std::vector<Key> keys;
      for (int32_t j = 0; j < T; ++j)
        if (mask[static_cast<size_t>(i) * T + j]) keys.push_back(key_at(row, j));
      return keys;
    };

    // Segments tile [0, used) in order; padding fills [used, T).
    std::vector<int32_t> segment_of(T, -1);
    int32_t cursor = 0;
    int trees = 0;
    for (size_t s = 0; s < row.segments.size(); ++s) {
      const Segment& seg = row.segments[s];
      ASSERT_EQ(seg.begin, cursor);
      ASSERT_LT(seg.begin, seg.end);
      for (int32_t i = seg.begin; i < seg.end; ++i) segment_of[i] = static_cast<int32_t>(s);
      cursor = seg.end;
      trees += seg.response == kPromptSegment;
    }
    ASSERT_EQ(cursor, row.used);
    coverage.rows_with_several_trees += trees >= 2;
    coverage.rows_with_padding += row.used < T;

    int32_t tree_prompt = -1;  // segment index of the prompt of the current tree
    for (size_t s = 0; s < row.segments.size(); ++s) {
      const Segment& seg = row.segments[s];
      ASSERT_TRUE(by_index.count(seg.example)) << "unknown example " << seg.example;
      const TokenizedExample& ex = *by_index.at(seg.example);
      const auto P = static_cast<int32_t>(ex.prompt.size());
      if (seg.response == kPromptSegment) {
        tree_prompt = static_cast<int32_t>(s);
        ASSERT_EQ(seg.end - seg.begin, P);
        for (int32_t d = 0; d < P; ++d) {  // causal within the prompt only
          const int32_t i = seg.begin + d;
          const std::vector<Key> chain = paired_chain(ex, 0);
          EXPECT_EQ(keys_of(i), std::vector<Key>(chain.begin(), chain.begin() + d + 1));
          EXPECT_EQ(row.parent[i], d == 0 ? -1 : i - 1);
        }
        continue;
      }
      ASSERT_GE(tree_prompt, 0) << "response before any prompt";
      ASSERT_EQ(row.segments[tree_prompt].example, seg.example);
      ASSERT_GE(seg.response, 0);
      ASSERT_LT(seg.response, static_cast<int32_t>(ex.responses.size()));
      EXPECT_TRUE(seen.emplace(seg.example, seg.response).second)
          << "example " << seg.example << " response " << seg.response << " twice";
      const std::vector<Key> chain = paired_chain(ex, seg.response);
      ASSERT_EQ(seg.end - seg.begin, static_cast<int32_t>(ex.responses[seg.response].size()));

      for (int32_t t = 0; t < seg.end - seg.begin; ++t) {
        const int32_t i = seg.begin + t;
        SCOPED_TRACE("example " + std::to_string(seg.example) + " response " +
                     std::to_string(seg.response) + " token " + std::to_string(t));
        EXPECT_EQ(key_at(row, i), chain[P + t]);
        // Attention: exactly the causal prefix of the paired chain.
        EXPECT_EQ(keys_of(i), std::vector<Key>(chain.begin(), chain.begin() + P + t + 1));
        // Prediction: the paired format's predictor of this token.
        const int32_t p = row.parent[i];
        ASSERT_GE(p, 0);
        ASSERT_LT(p, i);
        EXPECT_EQ(key_at(row, p), chain[P + t - 1]);
        // Isolation: keys only from this response or its own tree's prompt.
        for (int32_t j = 0; j < T; ++j) {
          if (!mask[static_cast<size_t>(i) * T + j]) continue;
          EXPECT_TRUE(segment_of[j] == static_cast<int32_t>(s) || segment_of[j] == tree_prompt)
              << "query " << i << " sees key " << j << " of segment " << segment_of[j];
        }
      }
    }

    for (int32_t i = row.used; i < T; ++i) {  // padding sees only itself, nobody sees it
      for (int32_t j = 0; j < T; ++j) {
        EXPECT_EQ(mask[static_cast<size_t>(i) * T + j], i == j) << "pad query " << i << " key " << j;
        EXPECT_EQ(mask[static_cast<size_t>(j) * T + i], i == j) << "query " << j << " pad key " << i;
      }
    }
  }

  size_t responses = 0;
  for (const auto& e : examples) responses += e.responses.size();
  EXPECT_EQ(seen.size(), responses);
}

class ForestVsPaired : public ::testing::TestWithParam<Layout> {};

TEST_P(ForestVsPaired, PackedRowsAttendAndPredictLikeThePairedChains) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed_trace(seed));
  std::mt19937_64 rng(seed);
  Coverage total;
  for (int trial = 0; trial < 30; ++trial) {
    const auto examples = random_examples(rng, uniform(rng, 2, 12));
    int64_t smallest = INT64_MAX, largest = 0;
    for (const auto& e : examples) {
      smallest = std::min(smallest, unit_tokens(e, GetParam()));
      largest = std::max(largest, unit_tokens(e, GetParam()));
    }
    // Room for the two extreme units together, so rows hold several trees.
    const int64_t capacity = largest + smallest + uniform(rng, 0, 60);
    const auto pad = static_cast<TokenId>(uniform(rng, 0, 200000));
    const auto rows = pack_examples(examples, GetParam(), capacity, pad);
    check_rows_against_paired(rows, examples, total);
    if (::testing::Test::HasFatalFailure()) return;
    for (const Row& row : rows) {
      ASSERT_EQ(row.size(), capacity);
      for (int32_t i = row.used; i < row.size(); ++i) {
        EXPECT_EQ(row.token[i], pad);
        EXPECT_EQ(row.position[i], 0);
        EXPECT_EQ(row.parent[i], -1);
      }
    }
  }
  // The property must have been exercised where it matters.
  EXPECT_GT(total.rows_with_several_trees, 0);
  EXPECT_GT(total.rows_with_padding, 0);
}

TEST_P(ForestVsPaired, UnpackedRowsHaveExactLengthAndTheSameProperty) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed_trace(seed));
  std::mt19937_64 rng(seed);
  const auto examples = random_examples(rng, 10);
  const auto rows = pack_examples(examples, GetParam(), 0, 7);
  ASSERT_EQ(rows.size(), examples.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    EXPECT_EQ(rows[r].used, rows[r].size());
    EXPECT_EQ(rows[r].size(),
              testing::reference_unit_tokens(shape_of(examples[r]), GetParam()));
  }
  Coverage coverage;
  check_rows_against_paired(rows, examples, coverage);
  EXPECT_EQ(coverage.rows_with_padding, 0);
}

TEST_P(ForestVsPaired, LogprobTargetsAreThePairedTargets) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed_trace(seed));
  std::mt19937_64 rng(seed);
  const auto examples = random_examples(rng, 12);
  std::map<int64_t, const TokenizedExample*> by_index;
  for (const auto& e : examples) by_index[e.index] = &e;
  const auto rows = pack_examples(examples, GetParam(), 200, 0);

  std::set<std::pair<int64_t, int32_t>> seen;
  for (const Row& row : rows) {
    const auto targets = logprob_targets(row);
    const auto spans = response_targets(row);
    int32_t next_first = 0;
    for (const auto& span : spans) {
      ASSERT_EQ(span.first, next_first);  // contiguous, in order, covering all targets
      next_first += span.num_tokens;
      const TokenizedExample& ex = *by_index.at(span.example);
      const auto& response = ex.responses.at(span.response);
      ASSERT_EQ(span.num_tokens, static_cast<int32_t>(response.size()));
      EXPECT_TRUE(seen.emplace(span.example, span.response).second);
      const std::vector<Key> chain = paired_chain(ex, span.response);
      const auto P = static_cast<int32_t>(ex.prompt.size());
      for (int32_t t = 0; t < span.num_tokens; ++t) {
        const LogprobTarget& target = targets.at(span.first + t);
        EXPECT_EQ(target.example, span.example);
        EXPECT_EQ(target.response, span.response);
        EXPECT_EQ(target.token, response[t]);
        EXPECT_EQ(row.token[target.index], response[t]);
        EXPECT_EQ(target.predictor, row.parent[target.index]);
        EXPECT_EQ(key_at(row, target.predictor), chain[P + t - 1]);
      }
    }
    EXPECT_EQ(next_first, static_cast<int32_t>(targets.size()));
  }
  size_t responses = 0;
  for (const auto& e : examples) responses += e.responses.size();
  EXPECT_EQ(seen.size(), responses);
}

INSTANTIATE_TEST_SUITE_P(Layouts, ForestVsPaired,
                         ::testing::Values(Layout::shared, Layout::paired),
                         [](const auto& info) { return std::string(layout_name(info.param)); });

}  // namespace
}  // namespace duet::layout
