// RoPE against transformers' formula written out plainly, its invariance
// property, gradients, strides and errors.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/rope.hpp"
#include "gradcheck.hpp"
#include "helpers.hpp"

namespace duet::test {
namespace {

using backend::RopeParams;

// Llama's default inverse frequencies, theta^(-2i/D), rounded to float as
// transformers stores them (the model layer computes the real table).
std::vector<float> inverse_frequencies(int64_t dim, double theta) {
  std::vector<float> f(dim / 2);
  for (int64_t i = 0; i < dim / 2; ++i)
    f[i] = static_cast<float>(1.0 / std::pow(theta, 2.0 * i / static_cast<double>(dim)));
  return f;
}

// transformers: q_embed = q * cos + rotate_half(q) * sin, cos = cat(cos(f), cos(f)),
// rotate_half(x) = cat(-x[D/2:], x[:D/2]); f = position * inv_freq. In
// double; with fp32_angle the angle is first rounded to float as transformers'
// fp32 matmul does.
std::vector<double> hf_rope(const std::vector<double>& x, int64_t n, int64_t heads, int64_t dim,
                            const std::vector<int32_t>& pos, const std::vector<float>& inv_freq,
                            bool fp32_angle) {
  std::vector<double> out(x.size());
  for (int64_t t = 0; t < n; ++t) {
    std::vector<double> cos(dim), sin(dim);
    for (int64_t i = 0; i < dim; ++i) {
      double angle = double(pos[t]) * double(inv_freq[i % (dim / 2)]);
      if (fp32_angle) angle = float(float(pos[t]) * inv_freq[i % (dim / 2)]);
      cos[i] = std::cos(angle);
      sin[i] = std::sin(angle);
    }
    for (int64_t h = 0; h < heads; ++h) {
      const double* xh = x.data() + (t * heads + h) * dim;
      double* oh = out.data() + (t * heads + h) * dim;
      for (int64_t i = 0; i < dim; ++i) {
        const double rotated = i < dim / 2 ? -xh[i + dim / 2] : xh[i - dim / 2];
        oh[i] = xh[i] * cos[i] + rotated * sin[i];
      }
    }
  }
  return out;
}

template <typename S>
RopeParams<S> params(int64_t n, int64_t hq, int64_t hkv, int64_t dim, const std::vector<int32_t>& pos,
                     const std::vector<float>& inv_freq) {
  RopeParams<S> p;
  p.n_tokens = n;
  p.n_q_heads = hq;
  p.n_kv_heads = hkv;
  p.head_dim = dim;
  p.positions = pos.data();
  p.inv_freq = inv_freq.data();
  p.set_packed_strides();
  return p;
}

std::vector<int32_t> random_positions(std::mt19937_64& rng, int64_t n, int32_t max) {
  std::vector<int32_t> pos(n);
  for (auto& p : pos) p = static_cast<int32_t>(random_int(rng, 0, max));
  return pos;
}

TEST(Rope, MatchesTransformersFormula) {
  DUET_SEEDED_RNG(rng);
  const int64_t n = 37, hq = 4, hkv = 2;
  for (int64_t dim : {8, 64, 128}) {
    for (bool fp32_angles : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "D=" << dim << " fp32_angles " << fp32_angles);
      const auto inv_freq = inverse_frequencies(dim, 500000.0);
      const auto pos = random_positions(rng, n, 131072);
      const auto q0 = random_values(rng, n * hq * dim), k0 = random_values(rng, n * hkv * dim);
      const auto want_q = hf_rope(q0, n, hq, dim, pos, inv_freq, fp32_angles);
      const auto want_k = hf_rope(k0, n, hkv, dim, pos, inv_freq, fp32_angles);

      auto q = q0, k = k0;
      auto p = params<double>(n, hq, hkv, dim, pos, inv_freq);
      p.fp32_angles = fp32_angles;
      p.q = q.data();
      p.k = k.data();
      backend::cpu::rope_forward(p);
      // Same double formula: only the last bits differ.
      expect_close(q, want_q, 1e-14, "q double");
      expect_close(k, want_k, 1e-14, "k double");

      // float: inputs are exact floats; cos/sin rounded to float (relative
      // 6e-8) and two products and a sum: a few ulp.
      auto qf = cast<float>(q0), kf = cast<float>(k0);
      auto pf = params<float>(n, hq, hkv, dim, pos, inv_freq);
      pf.fp32_angles = fp32_angles;
      pf.q = qf.data();
      pf.k = kf.data();
      backend::cpu::rope_forward(pf);
      expect_close(qf, want_q, 1e-6, "q float");
      expect_close(kf, want_k, 1e-6, "k float");
    }
  }
}

// At position 0 the rotation is the identity; the two angle modes differ by
// the fp32 rounding of the angle (large at large positions), which is what
// fp32_angles is for.
TEST(Rope, PositionZeroIsIdentityAndAngleModesDiffer) {
  DUET_SEEDED_RNG(rng);
  const int64_t dim = 64;
  const auto inv_freq = inverse_frequencies(dim, 10000.0);
  const auto x0 = random_values(rng, dim);
  std::vector<int32_t> zero = {0}, far = {100003};
  auto x = x0;
  auto p = params<double>(1, 1, 0, dim, zero, inv_freq);
  p.q = x.data();
  backend::cpu::rope_forward(p);
  expect_bitwise_equal(x, x0, "rotation at position 0");

  auto exact = x0, rounded = x0;
  p.positions = far.data();
  p.q = exact.data();
  backend::cpu::rope_forward(p);
  p.fp32_angles = true;
  p.q = rounded.data();
  backend::cpu::rope_forward(p);
  double max_diff = 0;
  for (int64_t i = 0; i < dim; ++i) max_diff = std::max(max_diff, std::abs(exact[i] - rounded[i]));
  EXPECT_GT(max_diff, 1e-6);
}

// Scores between a query at position p and a key at p' depend only on p - p'.
TEST(Rope, ScoresDependOnlyOnRelativePosition) {
  DUET_SEEDED_RNG(rng);
  const int64_t dim = 64;
  const auto inv_freq = inverse_frequencies(dim, 10000.0);
  for (int trial = 0; trial < 20; ++trial) {
    const auto q0 = random_values(rng, dim), k0 = random_values(rng, dim);
    const int32_t p = int32_t(random_int(rng, 0, 8000)), pk = int32_t(random_int(rng, 0, 8000));
    const int32_t shift = int32_t(random_int(rng, 1, 100000));
    auto score = [&](int32_t qpos, int32_t kpos) {
      auto q = q0, k = k0;
      std::vector<int32_t> pq = {qpos}, pkv = {kpos};
      auto a = params<double>(1, 1, 0, dim, pq, inv_freq);
      a.q = q.data();
      backend::cpu::rope_forward(a);
      auto b = params<double>(1, 0, 1, dim, pkv, inv_freq);
      b.k = k.data();
      backend::cpu::rope_forward(b);
      double s = 0;
      for (int64_t d = 0; d < dim; ++d) s += q[d] * k[d];
      return s;
    };
    const double base = score(p, pk), shifted = score(p + shift, pk + shift);
    // Angles up to ~1e5 rad carry ~1e-11 absolute error in double.
    EXPECT_NEAR(base, shifted, 1e-9 * (1 + std::abs(base))) << p << " " << pk << " +" << shift;
    // And it does depend on the offset (the property is not vacuous).
    EXPECT_GT(std::abs(base - score(p + 1, pk)), 1e-9) << p << " " << pk;
  }
}

TEST(Rope, GradientsMatchFiniteDifferences) {
  DUET_SEEDED_RNG(rng);
  const int64_t n = 9, hq = 4, hkv = 2, dim = 16;
  const auto inv_freq = inverse_frequencies(dim, 10000.0);
  const auto pos = random_positions(rng, n, 4000);
  std::vector<double> q = random_values(rng, n * hq * dim), k = random_values(rng, n * hkv * dim);
  std::vector<double> qr(q.size()), kr(k.size()), dq, dk;
  auto p = params<double>(n, hq, hkv, dim, pos, inv_freq);
  GradCheck check;
  check.inputs = {{"q", &q, &dq}, {"k", &k, &dk}};
  check.outputs = {&qr, &kr};
  check.forward = [&] {
    qr = q;
    kr = k;
    p.q = qr.data();
    p.k = kr.data();
    backend::cpu::rope_forward(p);
  };
  check.backward = [&] {
    dq = check.d_outputs[0];
    dk = check.d_outputs[1];
    p.q = dq.data();
    p.k = dk.data();
    backend::cpu::rope_backward(p);
  };
  run_gradcheck(check, rng);
}

// q and k as views into a fused qkv row: v's part must stay untouched.
TEST(Rope, RowStridesLeaveOtherColumnsAlone) {
  DUET_SEEDED_RNG(rng);
  const int64_t n = 11, hq = 4, hkv = 2, dim = 8, qw = hq * dim, kw = hkv * dim;
  const int64_t fused = qw + 2 * kw;
  const auto inv_freq = inverse_frequencies(dim, 10000.0);
  const auto pos = random_positions(rng, n, 100);
  const auto qkv0 = random_values(rng, n * fused);
  auto qkv = qkv0;
  auto p = params<double>(n, hq, hkv, dim, pos, inv_freq);
  p.q = qkv.data();
  p.k = qkv.data() + qw;
  p.q_row_stride = p.k_row_stride = fused;
  backend::cpu::rope_forward(p);
  std::vector<double> q0(n * qw), k0(n * kw);
  for (int64_t t = 0; t < n; ++t) {
    std::copy_n(qkv0.begin() + t * fused, qw, q0.begin() + t * qw);
    std::copy_n(qkv0.begin() + t * fused + qw, kw, k0.begin() + t * kw);
  }
  const auto want_q = hf_rope(q0, n, hq, dim, pos, inv_freq, false);
  const auto want_k = hf_rope(k0, n, hkv, dim, pos, inv_freq, false);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t e = 0; e < qw; ++e)
      EXPECT_NEAR(qkv[t * fused + e], want_q[t * qw + e], 1e-14);
    for (int64_t e = 0; e < kw; ++e) {
      EXPECT_NEAR(qkv[t * fused + qw + e], want_k[t * kw + e], 1e-14);
      EXPECT_EQ(qkv[t * fused + qw + kw + e], qkv0[t * fused + qw + kw + e]);
    }
  }
}

TEST(Rope, RejectsBadArguments) {
  std::vector<float> q(2 * 6, 1.0f), k(2 * 6, 1.0f);
  std::vector<float> inv_freq = {1.0f, 0.1f, 0.01f};
  std::vector<int32_t> pos = {0, -3};
  RopeParams<float> p;
  p.n_tokens = 2;
  p.n_q_heads = 1;
  p.n_kv_heads = 1;
  p.head_dim = 6;
  p.positions = pos.data();
  p.inv_freq = inv_freq.data();
  p.set_packed_strides();
  p.q = q.data();
  p.k = k.data();
  EXPECT_THROW(
      {
        try {
          backend::cpu::rope_forward(p);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("positions[1] = -3"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
  p.head_dim = 5;
  p.set_packed_strides();
  EXPECT_THROW(backend::cpu::rope_forward(p), Error);
}

}  // namespace
}  // namespace duet::test
