// The step batcher: reproducible, epoch coverage, exact resume, packed and
// balanced steps.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <vector>

#include "layout/step_batcher.hpp"
#include "random_examples.hpp"
#include "util/error.hpp"

namespace duet::layout {
namespace {

using testing::fresh_seed;
using testing::random_shape;
using testing::reference_unit_tokens;
using testing::seed_trace;
using testing::uniform;

struct BatchSetup {
  std::vector<ExampleShape> shapes;
  BatcherOptions options;
};

BatchSetup random_setup(std::mt19937_64& rng) {
  BatchSetup s;
  s.shapes.resize(uniform(rng, 20, 200));
  for (auto& shape : s.shapes) shape = random_shape(rng);
  s.options.layout = uniform(rng, 0, 1) ? Layout::shared : Layout::paired;
  s.options.global_batch = uniform(rng, 1, std::min<int64_t>(40, s.shapes.size()));
  s.options.drop_last = uniform(rng, 0, 1);
  s.options.pack_tokens = uniform(rng, 0, 2) == 0 ? 0 : uniform(rng, 140, 700);
  s.options.ranks = static_cast<int>(uniform(rng, 1, 4));
  s.options.seed = rng();
  return s;
}

std::string describe(const BatcherOptions& o) {
  return std::string(layout_name(o.layout)) + " N=" + std::to_string(o.global_batch) +
         " drop_last=" + std::to_string(o.drop_last) + " pack=" + std::to_string(o.pack_tokens) +
         " ranks=" + std::to_string(o.ranks);
}

void expect_same(const Step& a, const Step& b) {
  EXPECT_EQ(a.position, b.position);
  EXPECT_EQ(a.examples, b.examples);
  EXPECT_EQ(a.num_examples, b.num_examples);
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.row_tokens, b.row_tokens);
  EXPECT_EQ(a.rank_rows, b.rank_rows);
}

std::vector<Step> walk(const StepBatcher& batcher, StepPosition start, int64_t count) {
  StepCursor cursor(batcher, start);
  std::vector<Step> steps;
  for (int64_t i = 0; i < count; ++i) steps.push_back(cursor.next());
  return steps;
}

TEST(StepBatcher, SameSeedSameStepsOtherSeedOtherOrder) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed_trace(seed));
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 10; ++trial) {
    BatchSetup s = random_setup(rng);
    SCOPED_TRACE(describe(s.options));
    const StepBatcher a(s.shapes, s.options), b(s.shapes, s.options);
    const int64_t count = 2 * a.steps_per_epoch() + 1;
    const auto first = walk(a, {}, count), second = walk(b, {}, count);
    for (int64_t i = 0; i < count; ++i) expect_same(first[i], second[i]);

    s.options.seed += 1;
    const StepBatcher c(s.shapes, s.options);
    EXPECT_NE(c.epoch_order(0), a.epoch_order(0));
    EXPECT_NE(a.epoch_order(1), a.epoch_order(0));
  }
}

TEST(StepBatcher, EachEpochCoversEveryExampleOnce) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed_trace(seed));
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 20; ++trial) {
    const BatchSetup s = random_setup(rng);
    SCOPED_TRACE(describe(s.options));
    const StepBatcher batcher(s.shapes, s.options);
    const auto n = static_cast<int64_t>(s.shapes.size());
    const int64_t N = s.options.global_batch;
    const int64_t per_epoch = batcher.steps_per_epoch();
    EXPECT_EQ(per_epoch, s.options.drop_last ? n / N : (n + N - 1) / N);
    const auto steps = walk(batcher, {}, 2 * per_epoch);
    for (int64_t epoch = 0; epoch < 2; ++epoch) {
      std::vector<size_t> seen;
      for (int64_t k = 0; k < per_epoch; ++k) {
        const Step& step = steps[epoch * per_epoch + k];
        EXPECT_EQ(step.position, (StepPosition{epoch, k}));
        const bool last = k + 1 == per_epoch;
        EXPECT_EQ(step.num_examples, last && !s.options.drop_last ? n - (per_epoch - 1) * N : N);
        EXPECT_EQ(step.num_examples, static_cast<int64_t>(step.examples.size()));
        seen.insert(seen.end(), step.examples.begin(), step.examples.end());
      }
      std::sort(seen.begin(), seen.end());
      EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end()) << "a repeat";
      EXPECT_EQ(static_cast<int64_t>(seen.size()), s.options.drop_last ? per_epoch * N : n);
      if (!seen.empty()) {
        EXPECT_LT(seen.back(), s.shapes.size());
      }
    }
  }
}

TEST(StepBatcher, StepsArePackedAndBalanced) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed_trace(seed));
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 20; ++trial) {
    const BatchSetup s = random_setup(rng);
    SCOPED_TRACE(describe(s.options));
    const StepBatcher batcher(s.shapes, s.options);
    for (const Step& step : walk(batcher, {}, batcher.steps_per_epoch())) {
      // Rows partition the step's examples; their token counts add up.
      std::multiset<size_t> in_rows;
      ASSERT_EQ(step.rows.size(), step.row_tokens.size());
      for (size_t r = 0; r < step.rows.size(); ++r) {
        int64_t tokens = 0;
        for (size_t e : step.rows[r]) {
          in_rows.insert(e);
          tokens += reference_unit_tokens(s.shapes.at(e), s.options.layout);
        }
        EXPECT_EQ(step.row_tokens[r], tokens);
        if (s.options.pack_tokens > 0) {
          EXPECT_LE(tokens, s.options.pack_tokens);
        } else {
          EXPECT_EQ(step.rows[r].size(), 1u);
        }
      }
      EXPECT_EQ(in_rows, std::multiset<size_t>(step.examples.begin(), step.examples.end()));

      // Ranks partition the rows within the largest row of perfect balance.
      ASSERT_EQ(step.rank_rows.size(), static_cast<size_t>(s.options.ranks));
      std::vector<int> count(step.rows.size(), 0);
      std::vector<int64_t> loads;
      for (const auto& rows : step.rank_rows) {
        int64_t load = 0;
        for (size_t r : rows) {
          ASSERT_LT(r, step.rows.size());
          ++count[r];
          load += step.row_tokens[r];
        }
        loads.push_back(load);
      }
      for (int c : count) EXPECT_EQ(c, 1);
      const int64_t largest = *std::max_element(step.row_tokens.begin(), step.row_tokens.end());
      const int64_t total = std::accumulate(loads.begin(), loads.end(), int64_t{0});
      const int64_t max_load = *std::max_element(loads.begin(), loads.end());
      EXPECT_LE(max_load - *std::min_element(loads.begin(), loads.end()), largest);
      EXPECT_LE(max_load * s.options.ranks, total + largest * s.options.ranks);
    }
  }
}

TEST(StepBatcher, RowBoundHoldsEveryRowOfEveryEpoch) {
  // What an engine reserves at the start of a run: no row of any step, in
  // any epoch's shuffle, holds more tokens or targets (response tokens).
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed_trace(seed));
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 30; ++trial) {
    const BatchSetup s = random_setup(rng);
    SCOPED_TRACE(describe(s.options));
    const StepBatcher batcher(s.shapes, s.options);
    const RowBound bound = batcher.row_bound();
    int64_t most_tokens = 0, most_targets = 0;
    for (const Step& step : walk(batcher, {}, 3 * batcher.steps_per_epoch())) {
      for (size_t r = 0; r < step.rows.size(); ++r) {
        int64_t tokens = 0, targets = 0;
        for (size_t e : step.rows[r]) {
          tokens += reference_unit_tokens(s.shapes.at(e), s.options.layout);
          for (int64_t length : s.shapes.at(e).responses) targets += length;
        }
        EXPECT_LE(tokens, bound.tokens);
        EXPECT_LE(targets, bound.targets);
        most_tokens = std::max(most_tokens, tokens), most_targets = std::max(most_targets, targets);
      }
    }
    EXPECT_LE(bound.targets, bound.tokens);
    if (s.options.pack_tokens == 0 && !s.options.drop_last) {  // every example is a row once an epoch
      EXPECT_EQ(most_tokens, bound.tokens);
      EXPECT_EQ(most_targets, bound.targets);
    }
    if (s.options.pack_tokens > 0) {
      EXPECT_LE(bound.tokens, s.options.pack_tokens);
    }
  }
}

TEST(StepBatcher, ResumingFromAPositionGivesTheSameLaterSteps) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(seed_trace(seed));
  std::mt19937_64 rng(seed);
  for (int trial = 0; trial < 10; ++trial) {
    const BatchSetup s = random_setup(rng);
    SCOPED_TRACE(describe(s.options));
    const StepBatcher batcher(s.shapes, s.options);
    const int64_t count = 3 * batcher.steps_per_epoch();
    const auto full = walk(batcher, {}, count);
    for (int probe = 0; probe < 3; ++probe) {
      const int64_t k = uniform(rng, 0, count - 1);
      // A fresh batcher, as after a restart, at the saved position.
      const StepBatcher restarted(s.shapes, s.options);
      const auto resumed = walk(restarted, full[k].position, count - k);
      for (int64_t i = k; i < count; ++i) expect_same(resumed[i - k], full[i]);
      expect_same(restarted.step(full[k].position), full[k]);
    }
  }
}

TEST(StepBatcher, ReportsBadInputs) {
  std::vector<ExampleShape> shapes(5, ExampleShape{3, {2, 2}});
  BatcherOptions options;
  options.global_batch = 6;
  EXPECT_THROW(StepBatcher(shapes, options), Error);  // not one full batch
  options.drop_last = false;
  const StepBatcher batcher(shapes, options);
  EXPECT_EQ(batcher.steps_per_epoch(), 1);
  EXPECT_THROW(batcher.step({0, 1}), Error);
  EXPECT_THROW(StepCursor(batcher, {-1, 0}), Error);

  shapes[3] = ExampleShape{100, {50, 50}};
  options.pack_tokens = 150;  // 200 tokens shared
  try {
    StepBatcher too_big(shapes, options);
    ADD_FAILURE() << "accepted an example larger than pack_tokens";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("example 3 "), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace duet::layout
