// The point of duet: prefix-shared and packed layouts give the same per-
// response log-probs and the same DPO gradients as the paired format. Random
// tiny models of each family, random examples; fp32 engine.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "engine/scoring.hpp"
#include "layout/pack_rows.hpp"
#include "loss/loss.hpp"
#include "tiny_models.hpp"

namespace duet::engine {
namespace {

using Key = std::pair<int64_t, int32_t>;  // (example, response)

struct Arrangement {
  layout::Layout layout;
  int64_t pack_tokens;  // 0: one example per row, exact length
};

std::vector<layout::Row> arrange(const std::vector<layout::TokenizedExample>& examples, const Arrangement& a) {
  return layout::pack_examples(examples, a.layout, a.pack_tokens, 0);
}

struct Outcome {
  std::map<Key, double> logps;
  ParameterSet<float> grads;
  double loss;
};

// Scores every response, computes the DPO (sigmoid) loss over the whole step
// with fixed reference log-probs, and backpropagates it micro-batch by
// micro-batch, as the trainer does.
Outcome run(const Transformer<float>& model, const ParameterSet<float>& params,
            const std::vector<layout::TokenizedExample>& examples, const std::map<Key, double>& ref,
            const Arrangement& a) {
  Outcome out{{}, ParameterSet<float>(model.config()), 0};
  Workspace<float> ws;
  std::vector<Batch> batches;
  for (const auto& row : arrange(examples, a)) batches.push_back(make_batch(row));
  for (const auto& b : batches)
    for (const auto& r : score(model, params, b, ws)) out.logps[{r.example, r.response}] = r.logp;

  std::vector<loss::PairLogps> pairs;
  std::map<int64_t, size_t> pair_of;
  for (const auto& e : examples) {
    pair_of[e.index] = pairs.size();
    pairs.push_back({out.logps.at({e.index, 0}), out.logps.at({e.index, 1}), ref.at({e.index, 0}),
                     ref.at({e.index, 1}), static_cast<int64_t>(e.responses[0].size()),
                     static_cast<int64_t>(e.responses[1].size())});
  }
  loss::LossConfig cfg;
  cfg.beta = 0.5;
  loss::LossState state;
  auto result = loss::compute(cfg, pairs, state);
  out.loss = result.loss_mean;

  out.grads.fill(0);
  for (const auto& b : batches) {
    score(model, params, b, ws);  // activations of this batch
    std::vector<double> d;
    for (const auto& r : b.responses) {
      const auto& pr = result.pairs[pair_of.at(r.example)];
      d.push_back(r.response == 0 ? pr.d_policy_chosen : r.response == 1 ? pr.d_policy_rejected : 0.0);
    }
    backprop(model, params, b, d, ws, out.grads);
  }
  return out;
}

class LayoutEquivalence : public ::testing::TestWithParam<model::Architecture> {};

TEST_P(LayoutEquivalence, SharedAndPackedEqualPaired) {
  uint64_t seed = testing::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto config = testing::tiny_config(GetParam());
  if (GetParam() == model::Architecture::Mistral) config.sliding_window = 16;
  Transformer<float> model(config);
  ParameterSet<float> params(config);
  testing::randomize(params, rng());
  // Prompts up to 70 tokens so that attention tiles (64 keys) cut through segments.
  auto examples = testing::random_examples(rng, 7, config.vocab_size, 70, 25, 3);
  std::map<Key, double> ref;
  std::normal_distribution<double> normal(-40, 10);
  for (const auto& e : examples)
    for (int32_t r = 0; r < static_cast<int32_t>(e.responses.size()); ++r) ref[{e.index, r}] = normal(rng);

  const Outcome paired = run(model, params, examples, ref, {layout::Layout::paired, 0});
  const Arrangement others[] = {{layout::Layout::shared, 0}, {layout::Layout::shared, 160},
                                {layout::Layout::paired, 320}};  // >= 3 x (70 + 25), the largest paired unit
  for (const auto& a : others) {
    SCOPED_TRACE(std::string(layout::layout_name(a.layout)) + " pack " + std::to_string(a.pack_tokens));
    const Outcome o = run(model, params, examples, ref, a);
    // Log-probs: fp32 sums of ~100 terms; the two layouts differ only in
    // summation order inside attention and matmuls: ~1e-6 relative.
    ASSERT_EQ(o.logps.size(), paired.logps.size());
    for (const auto& [key, lp] : paired.logps)
      EXPECT_NEAR(o.logps.at(key), lp, 1e-5 * std::abs(lp)) << "example " << key.first << " response " << key.second;
    EXPECT_NEAR(o.loss, paired.loss, 1e-5 * std::abs(paired.loss));
    // Gradients, tensor by tensor: every element within 1e-5 of the tensor's
    // largest gradient (elementwise relative error is meaningless for entries
    // that are zero up to rounding).
    for (const auto& s : paired.grads.slots()) {
      const float* g0 = paired.grads.values().data() + s.offset;
      const float* g1 = o.grads.values().data() + s.offset;
      double scale = 0;
      for (size_t i = 0; i < s.numel; ++i) scale = std::max(scale, std::abs(double{g0[i]}));
      ASSERT_GT(scale, 0) << s.name << " has no gradient at all";
      double worst = 0;
      for (size_t i = 0; i < s.numel; ++i) worst = std::max(worst, std::abs(double{g1[i]} - g0[i]));
      EXPECT_LE(worst, 1e-5 * scale) << s.name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, LayoutEquivalence,
                         ::testing::Values(model::Architecture::Llama, model::Architecture::Qwen2,
                                           model::Architecture::Mistral));

}  // namespace
}  // namespace duet::engine
