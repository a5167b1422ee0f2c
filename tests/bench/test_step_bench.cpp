// duet bench's pieces on the CPU: the profiles' synthetic examples follow
// their median length and prompt/completion ratio, visible pairs equal a
// count over the dense mask, and a step benchmark of a tiny model runs in
// every layout with the same work per example.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "bench/flops.hpp"
#include "bench/profiles.hpp"
#include "bench/step_bench.hpp"
#include "common/seeds.hpp"
#include "engine/engine.hpp"
#include "layout/dense_mask.hpp"
#include "layout/pack_rows.hpp"
#include "util/error.hpp"

namespace duet::bench {
namespace {

TEST(Profiles, ExamplesFollowTheMedianAndRatio) {
  DUET_SEEDED_RNG(rng);
  for (const auto& p : dataset_profiles()) {
    const auto ex = synthetic_examples(p, 2000, 32000, rng());
    std::vector<double> lengths;
    double prompt = 0, chosen = 0;
    for (const auto& e : ex) {
      ASSERT_EQ(e.responses.size(), 2u);
      ASSERT_NE(e.responses[0], e.responses[1]);
      lengths.push_back(static_cast<double>(e.prompt.size() + e.responses[0].size()));
      prompt += static_cast<double>(e.prompt.size()), chosen += static_cast<double>(e.responses[0].size());
      for (auto t : e.prompt) ASSERT_TRUE(t >= 100 && t < 32000);
    }
    std::nth_element(lengths.begin(), lengths.begin() + 1000, lengths.end());
    // The median of 2000 log-normal draws (sigma 0.5) has a relative spread of
    // sqrt(pi/2)·0.5/sqrt(2000) = 1.4%; 0.08 is 5.7 of those (one run in ~10^8 fails).
    EXPECT_NEAR(lengths[1000] / p.median_length, 1.0, 0.08) << p.name;
    EXPECT_NEAR(prompt / chosen / p.ratio, 1.0, 0.1) << p.name;
  }
  EXPECT_THROW(find_profile("imdb"), Error);
}

TEST(Flops, VisiblePairsCountTheDenseMask) {
  DUET_SEEDED_RNG(rng);
  const auto ex = synthetic_examples(find_profile("hh-rlhf"), 12, 1000, rng());
  for (int64_t window : {0, 40}) {
    // 4096: the profile's log-normal tail (sigma 0.5) passes it with probability ~1e-7 per example.
    for (const auto& row : layout::pack_examples(ex, layout::Layout::shared, 4096, 0)) {
      int64_t dense = 0;
      for (int32_t i = 0; i < row.used; ++i)
        for (int32_t j = 0; j <= i; ++j)
          dense += (i < row.visible_until[j] &&
                    (window == 0 || row.position[i] - row.position[j] < window));
      EXPECT_EQ(visible_pairs(row, window), dense) << "window " << window;
    }
  }
}

// The FLOP model term by term: a frozen base drops exactly the weight
// gradients (2·N per token, 2·d·V per target); an adapter adds 6·n_a per token.
TEST(Flops, LoraDropsTheBaseWeightGradientsAndAddsTheAdapter) {
  DUET_SEEDED_RNG(rng);
  model::ModelConfig c;
  c.vocab_size = 1000 + static_cast<int64_t>(rng() % 1000), c.hidden_size = 64, c.intermediate_size = 160;
  c.num_hidden_layers = 3, c.num_attention_heads = 4, c.num_key_value_heads = 2, c.head_dim = 16;
  StepWork w;
  w.real_tokens = 500 + static_cast<int64_t>(rng() % 500), w.targets = 200, w.visible_pairs = 30000;
  const double n = static_cast<double>(matrix_parameters(c)), dv = 64.0 * static_cast<double>(c.vocab_size);
  const double full = step_flops(c, w, true, true);
  const double frozen = step_flops(c, w, true, true, {true, 0});
  EXPECT_NEAR(full - frozen, 2 * n * static_cast<double>(w.real_tokens) + 2 * dv * static_cast<double>(w.targets),
              1e-9 * full);
  const double adapted = step_flops(c, w, true, true, {true, 1234});
  EXPECT_NEAR(adapted - frozen, 6.0 * 1234 * static_cast<double>(w.real_tokens), 1e-9 * full);
  EXPECT_NEAR(step_flops(c, w, false, false, {true, 1234}) - step_flops(c, w, false, false),
              2.0 * 1234 * static_cast<double>(w.real_tokens), 1e-9 * full);
}

TEST(StepBench, TinyModelInEveryLayout) {
  DUET_SEEDED_RNG(rng);
  model::ModelConfig c;
  c.vocab_size = 300, c.hidden_size = 32, c.intermediate_size = 64, c.num_hidden_layers = 1;
  c.num_attention_heads = 4, c.num_key_value_heads = 2, c.head_dim = 8, c.max_position_embeddings = 4096;
  engine::EngineOptions o;
  o.random_model = c;
  o.random_seed = rng();
  o.reference_is_start = true;
  auto engine = engine::make_engine(o);
  auto p = find_profile("hh-rlhf");
  p.median_length = 40;
  const auto ex = synthetic_examples(p, 16, c.vocab_size, rng());
  int64_t targets = -1;
  for (auto layout : {layout::Layout::paired, layout::Layout::shared})
    for (int64_t pack : {int64_t{0}, int64_t{1024}}) {  // 1024: far beyond the tail of 40-token examples
      StepBenchOptions so;
      so.layout = layout, so.pack_tokens = pack, so.examples_per_step = 8, so.steps = 2, so.warmup = 1;
      const auto r = run_step_bench(*engine, ex, so);
      EXPECT_GT(r.samples_per_second, 0);
      EXPECT_GT(r.tflops, 0);
      EXPECT_LE(r.work.real_tokens, r.work.row_tokens);
      // Same examples, same targets, whatever the layout; shared rows hold fewer tokens.
      if (targets < 0) targets = r.work.targets;
      EXPECT_EQ(r.work.targets, targets) << r.layout;
      EXPECT_EQ(r.layout, std::string(layout::layout_name(layout)) + (pack ? "+packed" : ""));
    }
}

}  // namespace
}  // namespace duet::bench
