// Embedding, RMSNorm, linear, SwiGLU and residual add: values against plain
// formulas, gradients against finite differences, fp32 against fp64.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "backend/embedding.hpp"
#include "backend/linear.hpp"
#include "backend/residual.hpp"
#include "backend/rmsnorm.hpp"
#include "backend/swiglu.hpp"
#include "gradcheck.hpp"
#include "helpers.hpp"

namespace duet::test {
namespace {

using namespace duet::backend;

// fp32 vs fp64 tolerance. Inputs are exact floats, so the difference is
// fp32 rounding only: unit roundoff u = 6e-8, and a K-term sum grows it
// like u sqrt(K) (random-walk rounding), ~2e-6 for K = 1024; 1e-5 relative
// (to the element plus the tensor's rms, see expect_close) keeps a margin.
constexpr double kFloatTol = 1e-5;

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// ---------------------------------------------------------------- embedding

std::vector<uint32_t> random_ids(std::mt19937_64& rng, int64_t n, int64_t vocab) {
  std::vector<uint32_t> ids(n);
  for (auto& id : ids) id = static_cast<uint32_t>(random_int(rng, 0, vocab - 1));
  return ids;
}

TEST(Embedding, ForwardCopiesRowsAndBackwardScatterAdds) {
  DUET_SEEDED_RNG(rng);
  const int64_t n = 300, vocab = 40, dim = 24;  // many repeated ids
  const auto ids = random_ids(rng, n, vocab);
  const auto table = cast<float>(random_values(rng, vocab * dim));
  auto out = poisoned<float>(n * dim);
  EmbeddingParams<float> f{ids.data(), table.data(), out.data(), n, vocab, dim};
  cpu::embedding_forward(f);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t c = 0; c < dim; ++c) ASSERT_EQ(out[t * dim + c], table[ids[t] * dim + c]);

  // Backward adds into a non-zero d_table; expected: the plain loop in token
  // order (the kernel's documented order), so the result is bitwise equal.
  const auto d_out = cast<float>(random_values(rng, n * dim));
  const auto d_table0 = cast<float>(random_values(rng, vocab * dim));
  auto want = d_table0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t c = 0; c < dim; ++c) want[ids[t] * dim + c] += d_out[t * dim + c];
  const int saved_threads = omp_get_max_threads();
  for (int threads : {1, 3}) {
    omp_set_num_threads(threads);
    auto d_table = d_table0;
    EmbeddingBackwardParams<float> b{ids.data(), d_out.data(), d_table.data(), n, vocab, dim};
    cpu::embedding_backward(b);
    expect_bitwise_equal(d_table, want, "d_table, threads " + std::to_string(threads));
  }
  omp_set_num_threads(saved_threads);
}

TEST(Embedding, GradientsMatchFiniteDifferences) {
  DUET_SEEDED_RNG(rng);
  const int64_t n = 20, vocab = 7, dim = 5;
  const auto ids = random_ids(rng, n, vocab);
  std::vector<double> table = random_values(rng, vocab * dim), out(n * dim), d_table;
  GradCheck check;
  check.inputs = {{"table", &table, &d_table, /*accumulates=*/true}};
  check.outputs = {&out};
  check.forward = [&] {
    cpu::embedding_forward(EmbeddingParams<double>{ids.data(), table.data(), out.data(), n, vocab, dim});
  };
  check.backward = [&] {
    cpu::embedding_backward(EmbeddingBackwardParams<double>{ids.data(), check.d_outputs[0].data(),
                                                            d_table.data(), n, vocab, dim});
  };
  run_gradcheck(check, rng);
}

TEST(Embedding, RejectsIdsOutsideTheVocabulary) {
  std::vector<uint32_t> ids = {1, 9};
  std::vector<float> table(8 * 2, 0.5f), out(2 * 2);
  EXPECT_NE(message_of([&] {
              cpu::embedding_forward(EmbeddingParams<float>{ids.data(), table.data(), out.data(), 2, 8, 2});
            }).find("ids[1] = 9 is outside the vocabulary [0, 8)"),
            std::string::npos);
  EXPECT_NE(message_of([&] {
              cpu::embedding_forward(EmbeddingParams<float>{ids.data(), nullptr, out.data(), 2, 8, 2});
            }).find("embedding: table is null"),
            std::string::npos);
}

// ------------------------------------------------------------------ rmsnorm

template <typename S>
struct NormRun {
  std::vector<S> y, rstd, dx, dw;
};

template <typename S>
NormRun<S> run_rmsnorm(const std::vector<double>& x, const std::vector<double>& w,
                       const std::vector<double>& dy, const std::vector<double>& dw0, int64_t rows,
                       int64_t dim, double eps) {
  const auto xs = cast<S>(x), ws = cast<S>(w), dys = cast<S>(dy);
  NormRun<S> r{poisoned<S>(rows * dim), poisoned<S>(rows), poisoned<S>(rows * dim), cast<S>(dw0)};
  cpu::rmsnorm_forward(RmsNormParams<S>{xs.data(), ws.data(), r.y.data(), r.rstd.data(), rows, dim, eps});
  cpu::rmsnorm_backward(RmsNormBackwardParams<S>{xs.data(), ws.data(), r.rstd.data(), dys.data(),
                                                 r.dx.data(), r.dw.data(), rows, dim});
  return r;
}

TEST(RmsNorm, MatchesFormulaAndFloatAgreesWithDouble) {
  DUET_SEEDED_RNG(rng);
  const int64_t rows = 33, dim = 1024;
  const double eps = 1e-5;
  const auto x = random_values(rng, rows * dim, -3, 3), w = random_values(rng, dim, 0.5, 1.5);
  const auto dy = random_values(rng, rows * dim), dw0 = random_values(rng, dim);
  // y = w * x / sqrt(mean(x^2) + eps), written plainly in long double.
  std::vector<double> want_y(rows * dim), want_rstd(rows);
  for (int64_t r = 0; r < rows; ++r) {
    long double ss = 0;
    for (int64_t c = 0; c < dim; ++c) ss += (long double)x[r * dim + c] * x[r * dim + c];
    const long double rstd = 1.0L / std::sqrt(ss / dim + (long double)eps);
    want_rstd[r] = double(rstd);
    for (int64_t c = 0; c < dim; ++c) want_y[r * dim + c] = double(w[c] * (x[r * dim + c] * rstd));
  }
  const auto d = run_rmsnorm<double>(x, w, dy, dw0, rows, dim, eps);
  expect_close(d.y, want_y, 1e-13, "y");
  expect_close(d.rstd, want_rstd, 1e-13, "rstd");
  const auto f = run_rmsnorm<float>(x, w, dy, dw0, rows, dim, eps);
  expect_close(f.y, d.y, kFloatTol, "y float");
  expect_close(f.rstd, d.rstd, kFloatTol, "rstd float");
  expect_close(f.dx, d.dx, kFloatTol, "dx float");
  expect_close(f.dw, d.dw, kFloatTol, "dw float");
}

TEST(RmsNorm, GradientsMatchFiniteDifferences) {
  DUET_SEEDED_RNG(rng);
  const int64_t rows = 6, dim = 16;
  std::vector<double> x = random_values(rng, rows * dim, -2, 2), w = random_values(rng, dim, 0.5, 1.5);
  std::vector<double> y(rows * dim), rstd(rows), dx, dw;
  GradCheck check;
  check.inputs = {{"x", &x, &dx}, {"w", &w, &dw, /*accumulates=*/true}};
  check.outputs = {&y};
  check.forward = [&] {
    cpu::rmsnorm_forward(RmsNormParams<double>{x.data(), w.data(), y.data(), rstd.data(), rows, dim, 1e-6});
  };
  check.backward = [&] {
    cpu::rmsnorm_backward(RmsNormBackwardParams<double>{x.data(), w.data(), rstd.data(),
                                                        check.d_outputs[0].data(), dx.data(),
                                                        dw.data(), rows, dim});
  };
  run_gradcheck(check, rng);
}

// ------------------------------------------------------------------- linear

template <typename S>
struct LinearRun {
  std::vector<S> y, dx, dw, db;
};

template <typename S>
LinearRun<S> run_linear(const std::vector<double>& x, const std::vector<double>& w,
                        const std::vector<double>* b, const std::vector<double>& dy,
                        const std::vector<double>& dw0, const std::vector<double>& db0, int64_t n,
                        int64_t in, int64_t out) {
  const auto xs = cast<S>(x), ws = cast<S>(w), dys = cast<S>(dy);
  const std::vector<S> bs = b ? cast<S>(*b) : std::vector<S>();
  LinearRun<S> r{poisoned<S>(n * out), poisoned<S>(n * in), cast<S>(dw0), cast<S>(db0)};
  cpu::linear_forward(LinearParams<S>{xs.data(), ws.data(), b ? bs.data() : nullptr, r.y.data(), n, in, out});
  cpu::linear_backward(LinearBackwardParams<S>{xs.data(), ws.data(), dys.data(), r.dx.data(),
                                               r.dw.data(), b ? r.db.data() : nullptr, n, in, out});
  return r;
}

TEST(Linear, MatchesPlainLoopsAndFloatAgreesWithDouble) {
  DUET_SEEDED_RNG(rng);
  const int64_t n = 37, in = 300, out = 70;
  const auto x = random_values(rng, n * in), w = random_values(rng, out * in), b = random_values(rng, out);
  const auto dy = random_values(rng, n * out), dw0 = random_values(rng, out * in), db0 = random_values(rng, out);
  for (bool bias : {true, false}) {
    SCOPED_TRACE(bias ? "with bias" : "no bias");
    std::vector<double> y(n * out), dx(n * in, 0), dw = dw0, db = db0;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t o = 0; o < out; ++o) {
        double s = bias ? b[o] : 0;
        for (int64_t i = 0; i < in; ++i) s += x[r * in + i] * w[o * in + i];
        y[r * out + o] = s;
        for (int64_t i = 0; i < in; ++i) {
          dx[r * in + i] += dy[r * out + o] * w[o * in + i];
          dw[o * in + i] += dy[r * out + o] * x[r * in + i];
        }
        if (bias) db[o] += dy[r * out + o];
      }
    const auto d = run_linear<double>(x, w, bias ? &b : nullptr, dy, dw0, db0, n, in, out);
    expect_close(d.y, y, 1e-12, "y");
    expect_close(d.dx, dx, 1e-12, "dx");
    expect_close(d.dw, dw, 1e-12, "dw");
    expect_close(d.db, db, 1e-12, "db");  // untouched without a bias: still db0
    const auto f = run_linear<float>(x, w, bias ? &b : nullptr, dy, dw0, db0, n, in, out);
    expect_close(f.y, d.y, kFloatTol, "y float");
    expect_close(f.dx, d.dx, kFloatTol, "dx float");
    expect_close(f.dw, d.dw, kFloatTol, "dw float");
    expect_close(f.db, d.db, kFloatTol, "db float");
  }
}

TEST(Linear, GradientsMatchFiniteDifferences) {
  DUET_SEEDED_RNG(rng);
  const int64_t n = 5, in = 7, out = 4;
  std::vector<double> x = random_values(rng, n * in), w = random_values(rng, out * in),
                      b = random_values(rng, out), y(n * out), dx, dw, db;
  GradCheck check;
  check.inputs = {{"x", &x, &dx}, {"W", &w, &dw, true}, {"b", &b, &db, true}};
  check.outputs = {&y};
  check.forward = [&] {
    cpu::linear_forward(LinearParams<double>{x.data(), w.data(), b.data(), y.data(), n, in, out});
  };
  check.backward = [&] {
    cpu::linear_backward(LinearBackwardParams<double>{x.data(), w.data(), check.d_outputs[0].data(),
                                                      dx.data(), dw.data(), db.data(), n, in, out});
  };
  run_gradcheck(check, rng);
}

TEST(Linear, RejectsMissingWeight) {
  std::vector<float> x(4), y(4);
  EXPECT_NE(message_of([&] {
              cpu::linear_forward(LinearParams<float>{x.data(), nullptr, nullptr, y.data(), 2, 2, 2});
            }).find("linear: weight is null"),
            std::string::npos);
  EXPECT_NE(message_of([&] {
              cpu::linear_forward(LinearParams<float>{x.data(), x.data(), nullptr, y.data(), 2, 0, 2});
            }).find("in_features must be positive"),
            std::string::npos);
}

// ------------------------------------------------------------------- swiglu

TEST(SwiGlu, MatchesFormulaGradientsAndFloat) {
  DUET_SEEDED_RNG(rng);
  const int64_t rows = 9, dim = 50;
  // Wide range: silu's tails (very negative gates) included.
  std::vector<double> gate = random_values(rng, rows * dim, -12, 12), up = random_values(rng, rows * dim);
  std::vector<double> out(rows * dim), dgate, dup;
  cpu::swiglu_forward(SwiGluParams<double>{gate.data(), up.data(), out.data(), rows, dim});
  std::vector<double> want(rows * dim);
  for (size_t i = 0; i < want.size(); ++i) want[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
  expect_close(out, want, 1e-15, "out");

  GradCheck check;
  check.inputs = {{"gate", &gate, &dgate}, {"up", &up, &dup}};
  check.outputs = {&out};
  check.forward = [&] {
    cpu::swiglu_forward(SwiGluParams<double>{gate.data(), up.data(), out.data(), rows, dim});
  };
  check.backward = [&] {
    cpu::swiglu_backward(SwiGluBackwardParams<double>{gate.data(), up.data(), check.d_outputs[0].data(),
                                                      dgate.data(), dup.data(), rows, dim});
  };
  run_gradcheck(check, rng);

  const auto gf = cast<float>(gate), uf = cast<float>(up), df = cast<float>(check.d_outputs[0]);
  auto of = poisoned<float>(rows * dim), dgf = poisoned<float>(rows * dim), duf = poisoned<float>(rows * dim);
  cpu::swiglu_forward(SwiGluParams<float>{gf.data(), uf.data(), of.data(), rows, dim});
  cpu::swiglu_backward(SwiGluBackwardParams<float>{gf.data(), uf.data(), df.data(), dgf.data(), duf.data(), rows, dim});
  expect_close(of, out, kFloatTol, "out float");
  expect_close(dgf, dgate, kFloatTol, "dgate float");
  expect_close(duf, dup, kFloatTol, "dup float");
}

// Zero rows is a valid call (a rank can get an empty micro-batch piece): no
// work, no pointer needed, nothing written.
TEST(EmptyInputs, AreNoOps) {
  std::vector<float> w(6, 1.0f), dw(6, 2.0f);
  EXPECT_NO_THROW(cpu::linear_forward(LinearParams<float>{nullptr, w.data(), nullptr, nullptr, 0, 3, 2}));
  EXPECT_NO_THROW(cpu::linear_backward(LinearBackwardParams<float>{nullptr, w.data(), nullptr, nullptr,
                                                                   dw.data(), nullptr, 0, 3, 2}));
  EXPECT_EQ(dw, std::vector<float>(6, 2.0f));
  EXPECT_NO_THROW(cpu::rmsnorm_forward(RmsNormParams<float>{nullptr, w.data(), nullptr, nullptr, 0, 6}));
  EXPECT_NO_THROW(cpu::embedding_backward(EmbeddingBackwardParams<float>{nullptr, nullptr, dw.data(), 0, 3, 2}));
  EXPECT_EQ(dw, std::vector<float>(6, 2.0f));
}

TEST(Residual, AddsInPlace) {
  DUET_SEEDED_RNG(rng);
  const auto x = random_values(rng, 1001), y0 = random_values(rng, 1001);
  auto y = y0;
  cpu::residual_add(ResidualAddParams<double>{y.data(), x.data(), 1001});
  for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], y0[i] + x[i]);
}

}  // namespace
}  // namespace duet::test
