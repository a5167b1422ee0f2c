// TRL's logits/chosen and logits/rejected come from per-target sums of the
// logits over the vocabulary, computed in the LM-head kernel without ever
// holding [tokens x vocab]. Here the engine's per-response sums (and
// log-probs) are checked against the full [tokens x vocab] logits and softmax
// computed by brute force from the final hidden states, for each family
// (Qwen2: tied embeddings), in the paired and the shared + packed layouts.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "engine/scoring.hpp"
#include "layout/pack_rows.hpp"
#include "tiny_models.hpp"

namespace duet::engine {
namespace {

class LogitSums : public ::testing::TestWithParam<model::Architecture> {};

TEST_P(LogitSums, EqualTheFullLogitMatrixSummedOverTheVocabulary) {
  const uint64_t seed = testing::fresh_seed();
  SCOPED_TRACE("DUET_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const auto config = testing::tiny_config(GetParam());
  Transformer<double> model(config);
  ParameterSet<double> params(config);
  testing::randomize(params, rng());
  const auto examples = testing::random_examples(rng, 5, config.vocab_size, 30, 12, 2);
  const int64_t d = config.hidden_size, V = config.vocab_size;
  const double* head = params.data(config.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");

  std::map<std::pair<int64_t, int32_t>, double> by_layout[2];
  int k = 0;
  for (auto [layout, pack] : {std::pair{layout::Layout::paired, int64_t{0}}, std::pair{layout::Layout::shared, int64_t{96}}}) {
    SCOPED_TRACE(layout::layout_name(layout));
    Workspace<double> ws;
    for (const auto& row : layout::pack_examples(examples, layout, pack, 0)) {
      const Batch b = make_batch(row);
      const auto scores = score(model, params, b, ws);
      // Brute force: every row's logits over the whole vocabulary.
      std::vector<double> z(static_cast<size_t>(b.n_tokens() * V));
      for (int64_t i = 0; i < b.n_tokens(); ++i)
        for (int64_t v = 0; v < V; ++v) {
          double s = 0;
          for (int64_t j = 0; j < d; ++j) s += ws.n_final[static_cast<size_t>(i * d + j)] * head[v * d + j];
          z[static_cast<size_t>(i * V + v)] = s;
        }
      ASSERT_EQ(scores.size(), b.responses.size());
      for (size_t r = 0; r < scores.size(); ++r) {
        const auto& resp = b.responses[r];
        double logit_sum = 0, logp = 0;
        for (int32_t t = resp.first; t < resp.first + resp.num_tokens; ++t) {
          const double* zr = z.data() + static_cast<size_t>(b.target_rows[static_cast<size_t>(t)]) * V;
          double mx = -INFINITY, e = 0;
          for (int64_t v = 0; v < V; ++v) logit_sum += zr[v], mx = std::max(mx, zr[v]);
          for (int64_t v = 0; v < V; ++v) e += std::exp(zr[v] - mx);
          logp += zr[b.target_ids[static_cast<size_t>(t)]] - (mx + std::log(e));
        }
        SCOPED_TRACE("example " + std::to_string(resp.example) + " response " + std::to_string(resp.response));
        EXPECT_EQ(scores[r].tokens, resp.num_tokens);
        EXPECT_NEAR(scores[r].logit_sum, logit_sum, 1e-10 * (1 + std::abs(logit_sum)));
        EXPECT_NEAR(scores[r].logp, logp, 1e-10 * (1 + std::abs(logp)));
        EXPECT_NE(scores[r].logit_sum, 0.0);
        by_layout[k][{resp.example, resp.response}] = scores[r].logit_sum;
      }
    }
    ++k;
  }
  // The same responses in both layouts, with the same sums.
  ASSERT_EQ(by_layout[0].size(), by_layout[1].size());
  for (const auto& [key, sum] : by_layout[0]) EXPECT_NEAR(by_layout[1].at(key), sum, 1e-10 * (1 + std::abs(sum)));
}

INSTANTIATE_TEST_SUITE_P(Families, LogitSums,
                         ::testing::Values(model::Architecture::Llama, model::Architecture::Qwen2,
                                           model::Architecture::Mistral));

TEST(LogitSums, AreNaNWhereTheEngineGivesNone) {
  Batch b;
  b.target_rows = {0, 1}, b.target_ids = {3, 4};
  b.responses = {{7, 0, 0, 2}};
  const std::vector<float> logp = {-1.0f, -2.0f};
  const auto without = sum_responses<float>(b, logp);
  ASSERT_EQ(without.size(), 1u);
  EXPECT_TRUE(std::isnan(without[0].logit_sum));
  const std::vector<float> sums = {5.0f, -1.5f};
  EXPECT_EQ(sum_responses<float>(b, logp, sums)[0].logit_sum, 3.5);
}

}  // namespace
}  // namespace duet::engine
