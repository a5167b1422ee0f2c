// The whole model's backward against central finite differences, in double,
// for each family (Llama with llama3 RoPE, Qwen2 with biases and tied
// embeddings, Mistral with a sliding window), on a packed shared-layout row.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "engine/batch.hpp"
#include "engine/transformer.hpp"
#include "layout/pack_rows.hpp"
#include "tiny_models.hpp"

namespace duet::engine {
namespace {

using testing::fresh_seed;

class ModelGradients : public ::testing::TestWithParam<model::Architecture> {};

TEST_P(ModelGradients, BackwardEqualsFiniteDifferences) {
  uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto config = testing::tiny_config(GetParam());
  if (GetParam() == model::Architecture::Mistral) config.sliding_window = 7;  // shorter than the sequences
  Transformer<double> model(config);
  ParameterSet<double> params(config), grads(config);
  testing::randomize(params, rng());

  auto examples = testing::random_examples(rng, 3, config.vocab_size, 12, 8, 3);
  auto rows = layout::pack_examples(examples, layout::Layout::shared, 200, 0);
  ASSERT_EQ(rows.size(), 1u);
  Batch batch = make_batch(rows[0]);
  Workspace<double> ws;

  // L = sum_t w_t logp_t with random weights w.
  std::normal_distribution<double> normal(0, 1);
  std::vector<double> w(static_cast<size_t>(batch.n_targets()));
  for (auto& x : w) x = normal(rng);
  auto loss = [&] {
    auto lp = model.forward(batch, params, ws);
    double s = 0;
    for (size_t t = 0; t < w.size(); ++t) s += w[t] * lp[t];
    return s;
  };
  loss();
  grads.fill(0);
  model.backward(batch, params, w, ws, grads);

  // Check a random sample of entries from every tensor. Central differences
  // with h = 1e-5 have truncation error ~h^2 * L''' ~ 1e-10 and rounding
  // error ~1e-16 * |L| / h ~ 1e-10, so 1e-6 relative (+1e-8 absolute) is
  // far above the noise and far below any real mistake.
  const double h = 1e-5;
  // Every tensor must move the loss: at least one of its sampled entries has a
  // gradient well above rounding (else the comparison above is 0 against 0,
  // e.g. a weight the forward forgot). Embedding entries are sampled from rows
  // of tokens that predict a target, the only ones sure to have a gradient.
  const bool embedding_is_head = config.tie_word_embeddings;
  for (const auto& s : params.slots()) {
    double largest = 0;
    for (int k = 0; k < 6; ++k) {
      size_t i = s.offset + rng() % s.numel;
      if (s.name == "model.embed_tokens.weight" && !embedding_is_head) {
        // A token that some target's prediction reads (a response's last token feeds none).
        const size_t row = batch.tokens[static_cast<size_t>(batch.target_rows[rng() % batch.target_rows.size()])];
        i = s.offset + row * static_cast<size_t>(config.hidden_size) + rng() % static_cast<size_t>(config.hidden_size);
      }
      double& p = params.values()[i];
      const double saved = p;
      p = saved + h;
      double up = loss();
      p = saved - h;
      double down = loss();
      p = saved;
      double fd = (up - down) / (2 * h);
      double an = grads.values()[i];
      EXPECT_NEAR(an, fd, 1e-8 + 1e-6 * std::abs(fd)) << s.name << " element " << i - s.offset;
      largest = std::max(largest, std::abs(an));
    }
    EXPECT_GT(largest, 1e-6) << s.name << ": no sampled entry has a gradient";
  }
}

INSTANTIATE_TEST_SUITE_P(Families, ModelGradients,
                         ::testing::Values(model::Architecture::Llama, model::Architecture::Qwen2,
                                           model::Architecture::Mistral));

}  // namespace
}  // namespace duet::engine
