#include "gradcheck.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "helpers.hpp"

namespace duet::test {

void run_gradcheck(GradCheck& c, std::mt19937_64& rng) {
  auto forward_loss = [&]() {
    for (auto* out : c.outputs) poison(*out);
    c.forward();
    double loss = 0;
    for (size_t k = 0; k < c.outputs.size(); ++k)
      for (size_t e = 0; e < c.outputs[k]->size(); ++e)
        loss += (*c.outputs[k])[e] * c.d_outputs[k][e];
    return loss;
  };

  c.d_outputs.clear();
  for (auto* out : c.outputs) c.d_outputs.push_back(random_values(rng, out->size()));
  const double loss = forward_loss();
  ASSERT_TRUE(std::isfinite(loss)) << "forward left outputs unwritten or non-finite";

  // Analytic gradients: written ones start as NaN (unwritten elements show),
  // accumulated ones start from random values that are subtracted after.
  std::vector<std::vector<double>> base(c.inputs.size());
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    auto& in = c.inputs[i];
    in.grad->resize(in.value->size());
    if (in.accumulates) {
      base[i] = random_values(rng, in.value->size());
      *in.grad = base[i];
    } else {
      poison(*in.grad);
    }
  }
  c.backward();
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    auto& in = c.inputs[i];
    ASSERT_TRUE(all_finite(*in.grad)) << in.name << ": gradient not fully written";
    if (in.accumulates)
      for (size_t e = 0; e < in.grad->size(); ++e) (*in.grad)[e] -= base[i][e];
  }

  for (auto& in : c.inputs) {
    std::vector<size_t> idx(in.value->size());
    std::iota(idx.begin(), idx.end(), size_t{0});
    if (idx.size() > c.max_checks_per_input) {
      std::shuffle(idx.begin(), idx.end(), rng);
      idx.resize(c.max_checks_per_input);
    }
    double typical = 0;
    for (double g : *in.grad) typical += std::abs(g);
    typical /= std::max<size_t>(1, in.grad->size());
    int failures = 0;
    for (size_t e : idx) {
      double& x = (*in.value)[e];
      const double x0 = x, h = c.step * std::max(1.0, std::abs(x0));
      x = x0 + h;
      const double plus = forward_loss();
      x = x0 - h;
      const double minus = forward_loss();
      x = x0;
      const double numeric = (plus - minus) / (2 * h), analytic = (*in.grad)[e];
      const double bound = c.rtol * std::max({std::abs(analytic), std::abs(numeric), typical});
      if (!(std::abs(numeric - analytic) <= bound) && failures++ < 5)
        ADD_FAILURE() << "d" << in.name << "[" << e << "]: backward " << analytic
                      << ", finite difference " << numeric << " (bound " << bound << ")";
    }
    EXPECT_EQ(failures, 0) << in.name << ": " << failures << " of " << idx.size()
                           << " checked elements disagree";
    // The loss is not trivially flat in this input (a test on zeros proves nothing).
    EXPECT_GT(typical, 0) << in.name << ": all gradients are zero";
  }
  forward_loss();  // leave outputs consistent with the unperturbed inputs
}

}  // namespace duet::test
