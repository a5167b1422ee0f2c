// The target-only LM head on the GPU against backend::cpu::target_logprobs in
// double on the same bf16 inputs: chunk sizes that do not divide the
// vocabulary, repeated target rows, a frozen head. All outputs are fp32; each
// is checked against a per-element bound derived below from the fp32/bf16
// roundings the GPU path performs.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/cuda/grouping.hpp"
#include "backend/cuda/ops_helpers.hpp"
#include "backend/cuda/target_logprobs.hpp"
#include "backend/target_logprobs.hpp"

namespace duet::test::ops {
namespace {

namespace bc = backend::cuda;

struct Case {
  int64_t rows, dim, vocab;
  std::vector<double> hidden, head, d_logp;
  std::vector<int32_t> target_rows;
  std::vector<uint32_t> target_ids;
  int64_t n_targets() const { return static_cast<int64_t>(target_rows.size()); }
};

// Logits of std ~ sqrt(dim)/3 (~2.7 at dim 64, a trained head's scale).
Case random_case(std::mt19937_64& rng, int64_t rows, int64_t dim, int64_t vocab, int64_t n_targets) {
  Case c{rows, dim, vocab, random_bf16_values(rng, rows * dim), random_bf16_values(rng, vocab * dim),
         random_values(rng, n_targets), {}, {}};
  for (int64_t t = 0; t < n_targets; ++t) {
    // every fourth target reuses an earlier target's row (a branch point)
    const bool repeat = t > 0 && t % 4 == 0;
    c.target_rows.push_back(repeat ? c.target_rows[random_int(rng, 0, t - 1)]
                                   : static_cast<int32_t>(random_int(rng, 0, rows - 1)));
    c.target_ids.push_back(static_cast<uint32_t>(random_int(rng, 0, vocab - 1)));
  }
  return c;
}

struct Oracle {
  std::vector<double> logp, lse, logit_sum, d_hidden, d_head;
  // bounds
  std::vector<double> b_logp, b_lse, b_logit_sum, b_d_hidden, b_d_head;
};

// The CPU kernel in double, plus Σ_v z_v and the error bounds, for one chunk size.
//
// Derivation (u = 2^-24, ub = 2^-8): a logit is a k = dim fp32 accumulation of
// exact bf16 products: |Δz| <= ε_t = 2 (dim + 2) u max_v Σ_d |h_d w_vd| (2u per
// add allows tensor-core truncation). The running sum of exp(z − m) over a
// chunk of c logits: per-thread sums of c/256 terms, an 8-level tree, then one
// rescale per chunk, each term's expf within 2 ulp: relative error
// K u with K = c/256 + 8 + 3 n_chunks + 4. So |Δlse| <= ε_t + K u + u |lse| and
// |Δlogp| <= 2 ε_t + K u + u (|lse| + |logp|) + u; Σ z errs by <= V ε_t +
// (c/256 + 8 + n_chunks + 1) u Σ|z|.
// Backward: G = dlogp (onehot − p) is rounded to bf16 (<= ub |G|) after p errs
// relatively by δ_t = 2 ε_t + K u + u |lse| + 4u; the products accumulate in fp32:
// |ΔdH| <= Σ_{t,v} (ub |G| + |dlogp| p δ_t + 2 (c + n_chunks + 2) u |G|) |W| + 2u |dH|,
// |ΔdW| <= Σ_t (ub |G| + |dlogp| p δ_t + 2 (n_t + 2) u |G|) |h| + 2u |dW|.
Oracle oracle(const Case& c, int64_t chunk, const std::vector<double>& dh0, const std::vector<double>& dw0) {
  const int64_t nt = c.n_targets(), d = c.dim, V = c.vocab;
  const int64_t eff = std::min(chunk, V), n_chunks = (V + eff - 1) / eff;
  Oracle o;
  o.logp.resize(nt), o.lse.resize(nt);
  backend::TargetLogprobsParams<double> fp;
  fp.hidden = c.hidden.data(), fp.lm_head = c.head.data(), fp.target_rows = c.target_rows.data();
  fp.target_ids = c.target_ids.data(), fp.n_rows = c.rows, fp.hidden_dim = d, fp.vocab = V, fp.n_targets = nt;
  fp.vocab_chunk = chunk, fp.logp = o.logp.data(), fp.lse = o.lse.data();
  backend::cpu::target_logprobs_forward(fp);
  o.d_hidden = dh0, o.d_head = dw0;
  backend::TargetLogprobsBackwardParams<double> bp;
  static_cast<backend::TargetLogprobsInputs<double>&>(bp) = fp;
  bp.lse = o.lse.data(), bp.d_logp = c.d_logp.data(), bp.d_hidden = o.d_hidden.data(), bp.d_lm_head = o.d_head.data();
  backend::cpu::target_logprobs_backward(bp);

  const double K = eff / 256.0 + 8 + 3.0 * n_chunks + 4;
  o.logit_sum.assign(nt, 0), o.b_logp.resize(nt), o.b_lse.resize(nt), o.b_logit_sum.resize(nt);
  o.b_d_hidden.assign(c.rows * d, 0), o.b_d_head.assign(V * d, 0);
  std::vector<double> z(V), abs_dot(V);
  for (int64_t t = 0; t < nt; ++t) {
    const double* h = c.hidden.data() + c.target_rows[t] * d;
    double s_max = 0, abs_z = 0;
    for (int64_t v = 0; v < V; ++v) {
      double s = 0, a = 0;
      for (int64_t k = 0; k < d; ++k) s += h[k] * c.head[v * d + k], a += std::abs(h[k] * c.head[v * d + k]);
      z[v] = s, abs_dot[v] = a, s_max = std::max(s_max, a);
      o.logit_sum[t] += s, abs_z += std::abs(s);
    }
    const double eps_t = 2.0 * (d + 2) * kU32 * s_max;
    o.b_lse[t] = eps_t + K * kU32 + kU32 * std::abs(o.lse[t]);
    o.b_logp[t] = 2 * eps_t + K * kU32 + kU32 * (std::abs(o.lse[t]) + std::abs(o.logp[t])) + kU32;
    o.b_logit_sum[t] = V * eps_t + (eff / 256.0 + 8 + n_chunks + 1) * kU32 * abs_z;
    const double delta = 2 * eps_t + K * kU32 + kU32 * std::abs(o.lse[t]) + 4 * kU32, dl = c.d_logp[t];
    for (int64_t v = 0; v < V; ++v) {
      const double p = std::exp(z[v] - o.lse[t]);
      const double g = std::abs(dl * ((v == c.target_ids[t]) - p));
      const double e_h = kU16 * g + std::abs(dl) * p * delta + 2.0 * (eff + n_chunks + 2) * kU32 * g;
      const double e_w = kU16 * g + std::abs(dl) * p * delta + 2.0 * (nt + 2) * kU32 * g;
      for (int64_t k = 0; k < d; ++k) {
        o.b_d_hidden[c.target_rows[t] * d + k] += e_h * std::abs(c.head[v * d + k]);
        o.b_d_head[v * d + k] += e_w * std::abs(h[k]);
      }
    }
  }
  for (size_t i = 0; i < o.b_d_hidden.size(); ++i) o.b_d_hidden[i] += 2 * kU32 * std::abs(o.d_hidden[i]);
  for (size_t i = 0; i < o.b_d_head.size(); ++i) o.b_d_head[i] += 2 * kU32 * std::abs(o.d_head[i]);
  return o;
}

void check_case(std::mt19937_64& rng, const Case& c, int64_t chunk, bool frozen) {
  const std::string name = "target_logprobs V" + std::to_string(c.vocab) + " chunk " + std::to_string(chunk) +
                           (frozen ? " frozen" : "");
  SCOPED_TRACE(name);
  const int64_t nt = c.n_targets(), d = c.dim, V = c.vocab;
  const std::vector<double> dh0 = random_values(rng, c.rows * d), dw0 = random_values(rng, V * d);
  const Oracle o = oracle(c, chunk, dh0, frozen ? std::vector<double>(V * d, 0.0) : dw0);

  bc::Gemm gemm;
  bc::TargetLogprobsShape shape;
  shape.n_rows = c.rows, shape.hidden_dim = d, shape.vocab = V, shape.n_targets = nt, shape.vocab_chunk = chunk;
  DeviceArray<uint8_t> ws(bc::target_logprobs_workspace_bytes(shape));
  DeviceArray<bf16> hidden(to_bf16(c.hidden)), head(to_bf16(c.head));
  DeviceArray<int32_t> rows(c.target_rows);
  DeviceArray<uint32_t> ids(c.target_ids);
  DeviceArray<float> logp(nt), lse(nt), logit_sum(nt), d_logp(to_f32(c.d_logp));
  DeviceArray<float> d_hidden(to_f32(dh0)), d_head(to_f32(dw0));
  const bc::KeyGroups groups = bc::group_by_key(c.target_rows);
  DeviceArray<int32_t> order(groups.order), starts(groups.group_start);

  bc::TargetLogprobsForward f;
  static_cast<bc::TargetLogprobsShape&>(f) = shape;
  f.hidden = hidden.get(), f.lm_head = head.get(), f.target_rows = rows.get(), f.target_ids = ids.get();
  f.logp = logp.get(), f.lse = lse.get(), f.logit_sum = logit_sum.get(), f.workspace = ws.get();
  bc::target_logprobs_forward(gemm, f, nullptr);
  expect_within_bound(name + " logp", widen(logp.download()), o.logp, o.b_logp);
  expect_within_bound(name + " lse", widen(lse.download()), o.lse, o.b_lse);
  expect_within_bound(name + " logit_sum", widen(logit_sum.download()), o.logit_sum, o.b_logit_sum);

  bc::TargetLogprobsBackward b;
  static_cast<bc::TargetLogprobsShape&>(b) = shape;
  b.hidden = hidden.get(), b.lm_head = head.get(), b.target_rows = rows.get(), b.target_ids = ids.get();
  b.lse = lse.get(), b.d_logp = d_logp.get(), b.d_hidden = d_hidden.get();
  b.d_lm_head = frozen ? nullptr : d_head.get(), b.workspace = ws.get();
  b.row_order = order.get(), b.row_group_start = starts.get(), b.n_row_groups = groups.n_groups();
  bc::target_logprobs_backward(gemm, b, nullptr);
  const std::vector<float> dh_first = d_hidden.download();
  expect_within_bound(name + " d_hidden", widen(dh_first), o.d_hidden, o.b_d_hidden);
  if (frozen)
    EXPECT_EQ(max_abs_diff(widen(d_head.download()), widen(to_f32(dw0))), 0.0) << "frozen head's gradient changed";
  else
    expect_within_bound(name + " d_lm_head", widen(d_head.download()), o.d_head, o.b_d_head);

  d_hidden.upload(to_f32(dh0));  // deterministic: a second run gives the same bits
  bc::target_logprobs_backward(gemm, b, nullptr);
  expect_same_bits(d_hidden.download(), dh_first, name + " d_hidden rerun");
}

TEST(CudaTargetLogprobs, ChunksRepeatedRowsFrozenHead) {
  DUET_OPS_REQUIRE_GPU();
  DUET_SEEDED_RNG(rng);
  const Case c = random_case(rng, 40, 64, 1000, 61);
  for (int64_t chunk : {1000, 333, 128, 4096, 7}) check_case(rng, c, chunk, false);
  check_case(rng, c, 333, true);
}

TEST(CudaTargetLogprobs, LargerShape) {
  DUET_OPS_REQUIRE_GPU();
  DUET_SEEDED_RNG(rng);
  const Case c = random_case(rng, 150, 256, 3001, 130);
  check_case(rng, c, 1024, false);
}

TEST(CudaTargetLogprobs, Validation) {
  DUET_OPS_REQUIRE_GPU();
  bc::Gemm gemm;
  DeviceArray<bf16> a(1024);
  DeviceArray<float> f(64);
  DeviceArray<int32_t> rows(4);
  DeviceArray<uint32_t> ids(4);
  bc::TargetLogprobsBackward b;
  b.n_rows = 4, b.hidden_dim = 8, b.vocab = 16, b.n_targets = 4, b.vocab_chunk = 8;
  b.hidden = a.get(), b.lm_head = a.get(), b.target_rows = rows.get(), b.target_ids = ids.get();
  b.lse = f.get(), b.d_logp = f.get(), b.d_hidden = f.get(), b.workspace = f.get();
  expect_error([&] { bc::target_logprobs_backward(gemm, b, nullptr); }, "n_row_groups is 0 for 4 items");
  b.hidden_dim = 12;
  expect_error([&] { bc::target_logprobs_backward(gemm, b, nullptr); }, "hidden_dim (12) must be a multiple of 8");
}

}  // namespace
}  // namespace duet::test::ops
