// Target log-probs against a naive full softmax over the vocabulary.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/target_logprobs.hpp"
#include "gradcheck.hpp"
#include "helpers.hpp"

namespace duet::test {
namespace {

using backend::TargetLogprobsBackwardParams;
using backend::TargetLogprobsParams;

struct Case {
  int64_t rows = 0, dim = 0, vocab = 0;
  std::vector<double> hidden, lm_head;
  std::vector<int32_t> target_rows;
  std::vector<uint32_t> target_ids;
  std::vector<double> d_logp;
  int64_t n_targets() const { return static_cast<int64_t>(target_rows.size()); }
};

// Targets at random rows, some rows repeated (the API allows it).
Case random_case(std::mt19937_64& rng, int64_t rows, int64_t dim, int64_t vocab, int64_t n_targets,
                 double head_range = 1.0) {
  Case c;
  c.rows = rows;
  c.dim = dim;
  c.vocab = vocab;
  c.hidden = random_values(rng, rows * dim, -1, 1);
  c.lm_head = random_values(rng, vocab * dim, -head_range, head_range);
  for (int64_t t = 0; t < n_targets; ++t) {
    c.target_rows.push_back(static_cast<int32_t>(random_int(rng, 0, rows - 1)));
    c.target_ids.push_back(static_cast<uint32_t>(random_int(rng, 0, vocab - 1)));
  }
  c.d_logp = random_values(rng, n_targets);
  return c;
}

struct Result {
  std::vector<double> logp, d_hidden, d_lm_head, logit_sum;
};

// The full [targets, V] logits and softmax, in double, from the definition.
Result naive(const Case& c, const std::vector<double>& dh0, const std::vector<double>& dw0) {
  Result r{std::vector<double>(c.n_targets()), dh0, dw0, std::vector<double>(c.n_targets(), 0.0)};
  for (int64_t t = 0; t < c.n_targets(); ++t) {
    const double* h = c.hidden.data() + c.target_rows[t] * c.dim;
    std::vector<double> z(c.vocab);
    double mx = -INFINITY;
    for (int64_t v = 0; v < c.vocab; ++v) {
      double s = 0;
      for (int64_t d = 0; d < c.dim; ++d) s += h[d] * c.lm_head[v * c.dim + d];
      z[v] = s;
      mx = std::max(mx, s);
    }
    double sum = 0;
    for (double zv : z) sum += std::exp(zv - mx);
    const double lse = mx + std::log(sum);
    r.logp[t] = z[c.target_ids[t]] - lse;
    for (double zv : z) r.logit_sum[t] += zv;
    for (int64_t v = 0; v < c.vocab; ++v) {
      const double g = c.d_logp[t] * ((v == c.target_ids[t]) - std::exp(z[v] - lse));
      for (int64_t d = 0; d < c.dim; ++d) {
        r.d_hidden[c.target_rows[t] * c.dim + d] += g * c.lm_head[v * c.dim + d];
        r.d_lm_head[v * c.dim + d] += g * h[d];
      }
    }
  }
  return r;
}

template <typename S>
struct KernelResult {
  std::vector<S> logp, lse, d_hidden, d_lm_head, logit_sum;
};

template <typename S>
KernelResult<S> run(const Case& c, int64_t chunk, const std::vector<double>& dh0,
                    const std::vector<double>& dw0) {
  const auto h = cast<S>(c.hidden), w = cast<S>(c.lm_head), dl = cast<S>(c.d_logp);
  KernelResult<S> r{poisoned<S>(c.n_targets()), poisoned<S>(c.n_targets()), cast<S>(dh0), cast<S>(dw0),
                    poisoned<S>(c.n_targets())};
  TargetLogprobsParams<S> f;
  f.hidden = h.data();
  f.lm_head = w.data();
  f.target_rows = c.target_rows.data();
  f.target_ids = c.target_ids.data();
  f.logp = r.logp.data();
  f.lse = r.lse.data();
  f.logit_sum = r.logit_sum.data();
  f.n_rows = c.rows;
  f.hidden_dim = c.dim;
  f.vocab = c.vocab;
  f.n_targets = c.n_targets();
  f.vocab_chunk = chunk;
  backend::cpu::target_logprobs_forward(f);
  TargetLogprobsBackwardParams<S> b;
  b.hidden = h.data();
  b.lm_head = w.data();
  b.target_rows = c.target_rows.data();
  b.target_ids = c.target_ids.data();
  b.lse = r.lse.data();
  b.d_logp = dl.data();
  b.d_hidden = r.d_hidden.data();
  b.d_lm_head = r.d_lm_head.data();
  b.n_rows = c.rows;
  b.hidden_dim = c.dim;
  b.vocab = c.vocab;
  b.n_targets = c.n_targets();
  b.vocab_chunk = chunk;
  backend::cpu::target_logprobs_backward(b);
  return r;
}

TEST(TargetLogprobs, MatchesFullSoftmaxForAnyChunking) {
  DUET_SEEDED_RNG(rng);
  const Case c = random_case(rng, 40, 24, 1000, 30);
  // Gradients accumulate: start from random values.
  const auto dh0 = random_values(rng, c.rows * c.dim), dw0 = random_values(rng, c.vocab * c.dim);
  const Result want = naive(c, dh0, dw0);
  for (int64_t chunk : {128, 333, 999, 1000, 4096, 1}) {  // 1000 = 7 x 128 + 104, etc.
    SCOPED_TRACE(::testing::Message() << "chunk " << chunk);
    const auto got = run<double>(c, chunk, dh0, dw0);
    expect_close(got.logp, want.logp, 1e-12, "logp");
    expect_close(got.logit_sum, want.logit_sum, 1e-12, "logit_sum");
    expect_close(got.d_hidden, want.d_hidden, 1e-12, "d_hidden");
    expect_close(got.d_lm_head, want.d_lm_head, 1e-12, "d_lm_head");
    for (double lp : got.logp) EXPECT_LT(lp, 0);
  }
}

// fp32 vs fp64: logits are d-term dots (error ~u sqrt(d) |h||w|, u = 6e-8)
// and p = exp(z - lse) turns the *absolute* error of z - lse into a relative
// error of p, so the agreement scales with the logits' magnitude. Logits here
// have std ~3 and max ~10 over V = 5000, like a trained LM head's: logp and lse
// agree to ~3e-7, well inside 1e-5. The gradients carry (onehot - p), which
// cancels where the target is likely (1 - p small), so they see ~1e-5 of the
// tensor's scale (max observed 1.2e-5 over many seeds): 5e-5 for them.
TEST(TargetLogprobs, FloatAgreesWithDouble) {
  DUET_SEEDED_RNG(rng);
  const Case c = random_case(rng, 64, 128, 5000, 48, /*head_range=*/0.8);
  const std::vector<double> dh0(c.rows * c.dim, 0.0), dw0(c.vocab * c.dim, 0.0);
  const auto d = run<double>(c, 512, dh0, dw0);
  const auto f = run<float>(c, 512, dh0, dw0);
  expect_close(f.logp, d.logp, 1e-5, "logp");
  expect_close(f.lse, d.lse, 1e-5, "lse");
  expect_close(f.logit_sum, d.logit_sum, 1e-5, "logit_sum");
  expect_close(f.d_hidden, d.d_hidden, 5e-5, "d_hidden");
  expect_close(f.d_lm_head, d.d_lm_head, 5e-5, "d_lm_head");
}

TEST(TargetLogprobs, GradientsMatchFiniteDifferences) {
  DUET_SEEDED_RNG(rng);
  Case c = random_case(rng, 6, 5, 23, 8);  // 8 targets on 6 rows: some rows repeat
  std::vector<double> logp(c.n_targets()), lse(c.n_targets()), dh, dw;
  GradCheck check;
  check.inputs = {{"hidden", &c.hidden, &dh, true}, {"lm_head", &c.lm_head, &dw, true}};
  check.outputs = {&logp};
  auto forward_params = [&] {
    TargetLogprobsParams<double> f;
    f.hidden = c.hidden.data();
    f.lm_head = c.lm_head.data();
    f.target_rows = c.target_rows.data();
    f.target_ids = c.target_ids.data();
    f.logp = logp.data();
    f.lse = lse.data();
    f.n_rows = c.rows;
    f.hidden_dim = c.dim;
    f.vocab = c.vocab;
    f.n_targets = c.n_targets();
    f.vocab_chunk = 10;
    return f;
  };
  check.forward = [&] { backend::cpu::target_logprobs_forward(forward_params()); };
  check.backward = [&] {
    TargetLogprobsBackwardParams<double> b;
    b.hidden = c.hidden.data();
    b.lm_head = c.lm_head.data();
    b.target_rows = c.target_rows.data();
    b.target_ids = c.target_ids.data();
    b.lse = lse.data();
    b.d_logp = check.d_outputs[0].data();
    b.d_hidden = dh.data();
    b.d_lm_head = dw.data();
    b.n_rows = c.rows;
    b.hidden_dim = c.dim;
    b.vocab = c.vocab;
    b.n_targets = c.n_targets();
    b.vocab_chunk = 10;
    backend::cpu::target_logprobs_backward(b);
  };
  run_gradcheck(check, rng);
}

TEST(TargetLogprobs, FrozenHeadAndErrors) {
  DUET_SEEDED_RNG(rng);
  Case c = random_case(rng, 10, 8, 50, 6);
  const std::vector<double> dh0(c.rows * c.dim, 0.0), dw0(c.vocab * c.dim, 0.0);
  const auto full = run<double>(c, 16, dh0, dw0);
  // d_lm_head = null: d_hidden unchanged.
  std::vector<double> lse = full.lse, dh = dh0;
  TargetLogprobsBackwardParams<double> b;
  b.hidden = c.hidden.data();
  b.lm_head = c.lm_head.data();
  b.target_rows = c.target_rows.data();
  b.target_ids = c.target_ids.data();
  b.lse = lse.data();
  b.d_logp = c.d_logp.data();
  b.d_hidden = dh.data();
  b.n_rows = c.rows;
  b.hidden_dim = c.dim;
  b.vocab = c.vocab;
  b.n_targets = c.n_targets();
  b.vocab_chunk = 16;
  backend::cpu::target_logprobs_backward(b);
  expect_bitwise_equal(dh, full.d_hidden, "d_hidden without d_lm_head");

  c.target_ids[3] = 50;
  auto bad = b;
  bad.target_ids = c.target_ids.data();
  try {
    backend::cpu::target_logprobs_backward(bad);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("target_ids[3] = 50 is outside [0, 50)"), std::string::npos)
        << e.what();
  }
  c.target_ids[3] = 0;
  c.target_rows[2] = -1;
  bad.target_rows = c.target_rows.data();
  EXPECT_THROW(backend::cpu::target_logprobs_backward(bad), Error);
  bad = b;
  bad.vocab_chunk = 0;
  EXPECT_THROW(backend::cpu::target_logprobs_backward(bad), Error);
}

}  // namespace
}  // namespace duet::test
