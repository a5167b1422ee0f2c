// The LoRA op: y += s dropout(x) Aᵀ Bᵀ against plain loops (with its dropout
// mask), gradients of x, A and B against finite differences with and without
// dropout, the mask's keep rate, fp32 against fp64.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/lora.hpp"
#include "gradcheck.hpp"
#include "helpers.hpp"

namespace duet::test {
namespace {

using namespace duet::backend;

struct Dims {
  int64_t n, in, out, r;
};

template <typename S>
std::vector<S> lora_output(const std::vector<double>& x, const std::vector<double>& a, const std::vector<double>& b,
                           const std::vector<double>& y0, const Dims& d, double scaling, double dropout, uint64_t key) {
  const auto xs = cast<S>(x), as = cast<S>(a), bs = cast<S>(b);
  std::vector<S> y = cast<S>(y0), scratch(static_cast<size_t>(lora_scratch_elements(d.n, d.in, d.r)));
  LoraParams<S> p;
  p.x = xs.data(), p.a = as.data(), p.b = bs.data(), p.y = y.data(), p.scratch = scratch.data();
  p.n_rows = d.n, p.in_features = d.in, p.out_features = d.out, p.rank = d.r;
  p.scaling = scaling, p.dropout = dropout, p.dropout_key = key;
  cpu::lora_forward(p);
  return y;
}

TEST(Lora, ForwardMatchesPlainLoopsWithItsDropoutMask) {
  DUET_SEEDED_RNG(rng);
  const Dims d{23, 40, 17, 4};
  const double scaling = 2.5, dropout = 0.25;
  const uint64_t key = rng();
  const auto x = random_values(rng, d.n * d.in), a = random_values(rng, d.r * d.in),
             b = random_values(rng, d.out * d.r), y0 = random_values(rng, d.n * d.out);
  std::vector<double> expected = y0;
  int64_t kept = 0;
  for (int64_t i = 0; i < d.n; ++i)
    for (int64_t o = 0; o < d.out; ++o) {
      double s = 0;
      for (int64_t k = 0; k < d.r; ++k) {
        double u = 0;
        for (int64_t c = 0; c < d.in; ++c) {
          const auto index = static_cast<uint64_t>(i * d.in + c);
          if (lora_dropout_keeps(key, index, dropout)) u += x[index] / (1 - dropout) * a[k * d.in + c];
        }
        s += u * b[o * d.r + k];
      }
      expected[i * d.out + o] += scaling * s;
    }
  for (int64_t i = 0; i < d.n * d.in; ++i) kept += lora_dropout_keeps(key, static_cast<uint64_t>(i), dropout);
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, d.n * d.in);
  const auto got = lora_output<double>(x, a, b, y0, d, scaling, dropout, key);
  expect_close(got, expected, 1e-12, "y");
  expect_close(lora_output<float>(x, a, b, y0, d, scaling, dropout, key), got, 1e-5, "y float");
  // Another key is another mask.
  EXPECT_NE(lora_output<double>(x, a, b, y0, d, scaling, dropout, key + 1), got);
}

TEST(Lora, DropoutKeepsOneMinusPOfTheElements) {
  DUET_SEEDED_RNG(rng);
  const uint64_t key = rng();
  const int64_t n = 200000;
  for (double p : {0.05, 0.5}) {
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) kept += lora_dropout_keeps(key, static_cast<uint64_t>(i), p);
    // Binomial(n, 1 - p): within 5 standard deviations.
    const double mean = n * (1 - p), sd = std::sqrt(n * p * (1 - p));
    EXPECT_NEAR(static_cast<double>(kept), mean, 5 * sd) << "p " << p;
  }
  EXPECT_TRUE(lora_dropout_keeps(key, 7, 0.0));
}

class LoraGradcheck : public ::testing::TestWithParam<double> {};

TEST_P(LoraGradcheck, GradientsMatchFiniteDifferences) {
  DUET_SEEDED_RNG(rng);
  const Dims d{6, 9, 5, 3};
  const double dropout = GetParam();
  const uint64_t key = rng();
  std::vector<double> x = random_values(rng, d.n * d.in), a = random_values(rng, d.r * d.in),
                      b = random_values(rng, d.out * d.r), y(d.n * d.out), dx, da, db,
                      scratch(static_cast<size_t>(lora_scratch_elements(d.n, d.in, d.r)));
  auto shape = [&](LoraShape<double>& p) {
    p.x = x.data(), p.a = a.data(), p.b = b.data(), p.scratch = scratch.data();
    p.n_rows = d.n, p.in_features = d.in, p.out_features = d.out, p.rank = d.r;
    p.scaling = 1.7, p.dropout = dropout, p.dropout_key = key;
  };
  GradCheck check;
  check.inputs = {{"x", &x, &dx, true}, {"A", &a, &da, true}, {"B", &b, &db, true}};
  check.outputs = {&y};
  check.forward = [&] {
    std::fill(y.begin(), y.end(), 0.0);  // the op adds to y
    LoraParams<double> p;
    shape(p);
    p.y = y.data();
    cpu::lora_forward(p);
  };
  check.backward = [&] {
    LoraBackwardParams<double> p;
    shape(p);
    p.dy = check.d_outputs[0].data(), p.dx = dx.data(), p.da = da.data(), p.db = db.data();
    cpu::lora_backward(p);
  };
  run_gradcheck(check, rng);
}

INSTANTIATE_TEST_SUITE_P(Dropout, LoraGradcheck, ::testing::Values(0.0, 0.4));

}  // namespace
}  // namespace duet::test
