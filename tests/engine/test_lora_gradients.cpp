// LoRA's backward against central finite differences, in double: the
// gradient of every A and B of every target module (all-linear), with the
// base frozen, with and without dropout, rsLoRA on one family.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "engine/batch.hpp"
#include "engine/lora.hpp"
#include "engine/transformer.hpp"
#include "layout/pack_rows.hpp"
#include "tiny_models.hpp"

namespace duet::engine {
namespace {

using testing::fresh_seed;

struct Case {
  model::Architecture arch;
  double dropout;
  bool rslora;
};

class LoraGradients : public ::testing::TestWithParam<Case> {};

TEST_P(LoraGradients, AdapterGradientsEqualFiniteDifferences) {
  const Case& c = GetParam();
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const auto config = testing::tiny_config(c.arch);
  LoraConfig lora;
  lora.r = 3, lora.alpha = 5, lora.dropout = c.dropout, lora.use_rslora = c.rslora;
  lora.target_modules = parse_target_modules({"all-linear"});
  Transformer<double> model(config);
  ParameterSet<double> base(config), adapter(layout_adapter(config, lora)), grads(adapter.slots());
  testing::randomize(base, rng());
  testing::randomize(adapter, rng());  // B nonzero too, so that A's gradient is not zero
  // A perturbation of the base's size, not larger: keeps the loss's curvature
  // (the central difference's truncation error) as small as the base model's.
  for (double& v : adapter.values()) v *= 0.3;

  auto examples = testing::random_examples(rng, 3, config.vocab_size, 12, 8, 3);
  auto rows = layout::pack_examples(examples, layout::Layout::shared, 200, 0);
  ASSERT_EQ(rows.size(), 1u);
  const Batch batch = make_batch(rows[0]);
  Workspace<double> ws;
  LoraPass<double> pass{&lora, &adapter, &grads, true, rng()};

  std::normal_distribution<double> normal(0, 1);
  std::vector<double> w(static_cast<size_t>(batch.n_targets()));
  for (auto& x : w) x = normal(rng);
  auto loss = [&](const LoraPass<double>& p) {
    auto lp = model.forward(batch, base, ws, &p);
    double s = 0;
    for (size_t t = 0; t < w.size(); ++t) s += w[t] * lp[t];
    return s;
  };
  const double with_adapter = loss(pass);
  grads.fill(0);
  model.backward(batch, base, w, ws, pass);
  // The adapter and its dropout must change the output (else the check below proves nothing).
  LoraPass<double> eval = pass;
  eval.training = false;
  if (c.dropout > 0) {
    EXPECT_NE(loss(eval), with_adapter);
  }
  const double without = [&] {
    auto lp = model.forward(batch, base, ws);
    double s = 0;
    for (size_t t = 0; t < w.size(); ++t) s += w[t] * lp[t];
    return s;
  }();
  EXPECT_GT(std::abs(without - with_adapter), 1e-6);

  const double h = 1e-5;
  for (const auto& s : adapter.slots()) {
    double largest = 0;
    for (int k = 0; k < 5; ++k) {
      const size_t i = s.offset + rng() % s.numel;
      double& p = adapter.values()[i];
      const double saved = p;
      p = saved + h;
      const double up = loss(pass);
      p = saved - h;
      const double down = loss(pass);
      p = saved;
      const double fd = (up - down) / (2 * h), an = grads.values()[i];
      EXPECT_NEAR(an, fd, 1e-8 + 1e-6 * std::abs(fd)) << s.name << " element " << i - s.offset;
      largest = std::max(largest, std::abs(an));
    }
    EXPECT_GT(largest, 1e-6) << s.name << ": no sampled entry has a gradient";
  }
}

INSTANTIATE_TEST_SUITE_P(Families, LoraGradients,
                         ::testing::Values(Case{model::Architecture::Llama, 0.0, false},
                                           Case{model::Architecture::Llama, 0.3, true},
                                           Case{model::Architecture::Qwen2, 0.2, false}));

}  // namespace
}  // namespace duet::engine
