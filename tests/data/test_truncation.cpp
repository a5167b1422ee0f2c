// The truncation policy on random examples: the prompt keeps its end, each
// response its start, every chain fits max_length, and drops happen exactly
// when the policy says.
#include <gtest/gtest.h>

#include <algorithm>

#include "data/truncation.hpp"
#include "helpers.hpp"
#include "util/error.hpp"

namespace duet::data {
namespace {

using testing::fresh_seed;
using testing::seed_trace;
using testing::uniform;

layout::TokenizedExample random_example(std::mt19937_64& rng) {
  layout::TokenizedExample ex;
  auto ids = [&](int64_t n) {
    std::vector<layout::TokenId> v(static_cast<size_t>(n));
    for (auto& id : v) id = static_cast<layout::TokenId>(uniform(rng, 0, 3));  // few ids: collisions happen
    return v;
  };
  ex.prompt = ids(uniform(rng, 1, 40));
  const int64_t k = uniform(rng, 2, 4);
  for (int64_t r = 0; r < k; ++r) ex.responses.push_back(ids(uniform(rng, 1, 40)));
  return ex;
}

TEST(Truncation, KeepsThePromptEndAndTheResponseStarts) {
  for (int round = 0; round < 2000; ++round) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed_trace(seed));
    std::mt19937_64 rng(seed);
    const layout::TokenizedExample original = random_example(rng);
    Truncation t{uniform(rng, 0, 1) ? uniform(rng, 2, 80) : 0, 0};
    if (uniform(rng, 0, 1)) t.max_prompt_length = uniform(rng, 1, t.max_length > 0 ? t.max_length - 1 : 50);
    layout::TokenizedExample ex = original;
    const TruncationOutcome out = truncate_example(ex, t);

    const int64_t P = static_cast<int64_t>(original.prompt.size());
    const int64_t kept_prompt = t.max_prompt_length > 0 ? std::min(P, t.max_prompt_length) : P;
    ASSERT_EQ(static_cast<int64_t>(ex.prompt.size()), kept_prompt);
    EXPECT_TRUE(std::equal(ex.prompt.begin(), ex.prompt.end(), original.prompt.end() - kept_prompt));
    EXPECT_EQ(out.prompt_truncated, kept_prompt < P);

    if (t.max_length > 0 && kept_prompt >= t.max_length) {
      EXPECT_EQ(out.drop_reason, drop_reason::prompt_fills_max_length);
      continue;
    }
    bool any_cut = false;
    for (size_t r = 0; r < ex.responses.size(); ++r) {
      const auto& before = original.responses[r];
      const auto& after = ex.responses[r];
      const int64_t room = t.max_length > 0 ? t.max_length - kept_prompt : INT64_MAX;
      ASSERT_EQ(static_cast<int64_t>(after.size()), std::min<int64_t>(static_cast<int64_t>(before.size()), room));
      EXPECT_TRUE(std::equal(after.begin(), after.end(), before.begin()));
      any_cut |= after.size() < before.size();
      if (t.max_length > 0) {
        EXPECT_LE(static_cast<int64_t>(ex.prompt.size() + after.size()), t.max_length);
      }
    }
    EXPECT_EQ(out.responses_truncated, any_cut);
    bool identical = false;
    for (size_t j = 1; j < ex.responses.size(); ++j)
      for (size_t i = 0; i < j; ++i) identical |= ex.responses[i] == ex.responses[j];
    EXPECT_EQ(out.drop_reason == drop_reason::identical_after_truncation, identical && any_cut);
    if (!identical) {
      EXPECT_TRUE(out.drop_reason.empty());
    }
  }
}

TEST(Truncation, RejectsInconsistentLimits) {
  EXPECT_THROW(check_truncation({-1, 0}), Error);
  EXPECT_THROW(check_truncation({0, -1}), Error);
  EXPECT_THROW(check_truncation({100, 100}), Error);
  EXPECT_NO_THROW(check_truncation({100, 99}));
  EXPECT_NO_THROW(check_truncation({0, 500}));
}

}  // namespace
}  // namespace duet::data
