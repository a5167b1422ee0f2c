// The element-wise and normalisation ops (backend/cuda/layers.hpp) against
// the CPU kernels in double on the same bf16-rounded inputs. Each op runs on a
// dim that takes the 16-byte vector path and on one that does not.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/embedding.hpp"
#include "backend/cuda/grouping.hpp"
#include "backend/cuda/layers.hpp"
#include "backend/cuda/ops_helpers.hpp"
#include "backend/rmsnorm.hpp"
#include "backend/rope.hpp"
#include "backend/swiglu.hpp"

namespace duet::test::ops {
namespace {

namespace bc = backend::cuda;

std::vector<uint32_t> random_ids(std::mt19937_64& rng, int64_t n, int64_t vocab) {
  std::vector<uint32_t> ids(n);
  for (auto& id : ids) id = static_cast<uint32_t>(random_int(rng, 0, vocab - 1));
  return ids;
}

// ---- embedding ----

TEST(CudaLayers, EmbeddingForwardCopiesRows) {
  DUET_OPS_REQUIRE_GPU();
  DUET_SEEDED_RNG(rng);
  for (int64_t dim : {512, 100}) {
    const int64_t vocab = 300, n = 257;
    const std::vector<double> table = random_bf16_values(rng, vocab * dim);
    const std::vector<uint32_t> ids = random_ids(rng, n, vocab);
    DeviceArray<bf16> d_table(to_bf16(table)), out(n * dim);
    DeviceArray<uint32_t> d_ids(ids);
    bc::embedding_forward({d_ids.get(), d_table.get(), out.get(), n, vocab, dim}, nullptr);
    std::vector<double> expected(n * dim);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t c = 0; c < dim; ++c) expected[t * dim + c] = table[ids[t] * dim + c];
    EXPECT_EQ(max_abs_diff(widen(out.download()), expected), 0.0) << "dim " << dim;
  }
}

TEST(CudaLayers, EmbeddingBackwardRepeatedIdsDeterministic) {
  DUET_OPS_REQUIRE_GPU();
  DUET_SEEDED_RNG(rng);
  for (int64_t dim : {256, 37}) {
    SCOPED_TRACE("dim " + std::to_string(dim));
    const int64_t vocab = 50, n = 400;  // ~8 repeats per id
    std::vector<uint32_t> ids = random_ids(rng, n, vocab);
    ids[0] = ids[1] = ids[2] = ids[n - 1];
    const std::vector<double> d_out = random_values(rng, n * dim), table0 = random_values(rng, vocab * dim);
    const bc::KeyGroups groups = bc::group_by_key(ids);
    DeviceArray<uint32_t> d_ids(ids);
    DeviceArray<int32_t> order(groups.order), starts(groups.group_start);
    DeviceArray<float> g_out(to_f32(d_out)), g_table(to_f32(table0));
    bc::EmbeddingBackward p{d_ids.get(), order.get(), starts.get(), groups.n_groups(), g_out.get(), g_table.get(),
                            n, vocab, dim};
    bc::embedding_backward(p, nullptr);
    const std::vector<float> first = g_table.download();

    std::vector<double> expected = table0;
    backend::EmbeddingBackwardParams<double> cp{ids.data(), d_out.data(), expected.data(), n, vocab, dim};
    backend::cpu::embedding_backward(cp);
    // fp32 recursive sum of `count` terms then one add: |error| <= (count + 1) u (|d0| + Σ|x|).
    std::vector<double> abs_sum(vocab * dim), count(vocab * dim, 0.0);
    for (int64_t i = 0; i < vocab * dim; ++i) abs_sum[i] = std::abs(table0[i]);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t c = 0; c < dim; ++c) {
        abs_sum[ids[t] * dim + c] += std::abs(d_out[t * dim + c]);
        count[ids[t] * dim + c] += 1;
      }
    std::vector<double> bound(vocab * dim);
    for (int64_t i = 0; i < vocab * dim; ++i) bound[i] = (count[i] + 1) * kU32 * abs_sum[i];
    expect_within_bound("embedding backward dim " + std::to_string(dim), widen(first), expected, bound);

    g_table.upload(to_f32(table0));
    bc::embedding_backward(p, nullptr);
    expect_same_bits(g_table.download(), first, "embedding backward rerun");
  }
}

// ---- residual add + RMSNorm ----

struct NormCase {
  int64_t rows, dim;
  std::vector<double> residual, branch, weight;
};

NormCase norm_case(std::mt19937_64& rng, int64_t rows, int64_t dim) {
  return {rows, dim, random_bf16_values(rng, rows * dim, -2, 2), random_bf16_values(rng, rows * dim),
          random_bf16_values(rng, dim, 0.5, 1.5)};
}

TEST(CudaLayers, AddRmsNormForward) {
  DUET_OPS_REQUIRE_GPU();
  DUET_SEEDED_RNG(rng);
  const float eps = 1e-5f;
  for (int64_t dim : {1024, 200})
    for (bool with_branch : {true, false}) {
      const std::string name = "add_rmsnorm dim " + std::to_string(dim) + (with_branch ? " +branch" : "");
      SCOPED_TRACE(name);
      const NormCase c = norm_case(rng, 37, dim);
      const int64_t n = c.rows * dim;
      DeviceArray<bf16> res(to_bf16(c.residual)), br(to_bf16(c.branch)), w(to_bf16(c.weight)), h_out(n), y(n);
      DeviceArray<float> rstd(c.rows);
      bc::AddRmsNormForward p;
      p.residual = res.get(), p.branch = with_branch ? br.get() : nullptr, p.h_out = with_branch ? h_out.get() : nullptr;
      p.weight = w.get(), p.y = y.get(), p.rstd = rstd.get(), p.n_rows = c.rows, p.dim = dim, p.eps = eps;
      bc::add_rmsnorm_forward(p, nullptr);

      // h = bf16(residual + branch), exactly as the GPU must round it.
      std::vector<double> h = c.residual;
      if (with_branch)
        for (int64_t i = 0; i < n; ++i) h[i] = round_bf16(c.residual[i] + c.branch[i]);
      if (with_branch) EXPECT_EQ(max_abs_diff(widen(h_out.download()), h), 0.0) << "h_out";
      std::vector<double> y_ref(n), rstd_ref(c.rows);
      backend::RmsNormParams<double> cp{h.data(), c.weight.data(), y_ref.data(), rstd_ref.data(), c.rows, dim, eps};
      backend::cpu::rmsnorm_forward(cp);
      // Naive (transformers in bf16): fp32 statistics, bf16(h * rstd), then bf16(w * that).
      std::vector<double> naive(n);
      for (int64_t r = 0; r < c.rows; ++r) {
        float ss = 0;
        for (int64_t i = 0; i < dim; ++i) ss += static_cast<float>(h[r * dim + i] * h[r * dim + i]);
        const float rs = 1.0f / std::sqrt(ss / static_cast<float>(dim) + eps);
        for (int64_t i = 0; i < dim; ++i)
          naive[r * dim + i] = round_bf16(c.weight[i] * round_bf16(static_cast<float>(h[r * dim + i]) * rs));
      }
      expect_within_naive(name + " y", widen(y.download()), y_ref, naive);
      // rstd: the mean of dim positive fp32 terms errs by <= (dim + 1) u
      // relatively; 1/sqrt halves that and adds 2 roundings.
      std::vector<double> bound(c.rows);
      for (int64_t r = 0; r < c.rows; ++r) bound[r] = ((dim + 1) / 2.0 + 3) * kU32 * rstd_ref[r];
      expect_within_bound(name + " rstd", widen(rstd.download()), rstd_ref, bound);
    }
}

TEST(CudaLayers, RmsNormBackward) {
  DUET_OPS_REQUIRE_GPU();
  DUET_SEEDED_RNG(rng);
  for (auto [rows, dim] : {std::pair<int64_t, int64_t>{300, 1024}, {5, 200}, {1, 8}})
    for (bool frozen : {false, true}) {
      const std::string name =
          "rmsnorm backward " + std::to_string(rows) + "x" + std::to_string(dim) + (frozen ? " frozen" : "");
      SCOPED_TRACE(name);
      const NormCase c = norm_case(rng, rows, dim);
      const int64_t n = rows * dim;
      // rstd as the forward saves it (fp32), the same input for both sides.
      std::vector<double> rstd(rows), y_unused(n);
      backend::RmsNormParams<double> fp{c.residual.data(), c.weight.data(), y_unused.data(), rstd.data(), rows, dim, 1e-6};
      backend::cpu::rmsnorm_forward(fp);
      for (double& r : rstd) r = static_cast<float>(r);
      const std::vector<double> dy = random_values(rng, n), d_h0 = random_values(rng, n), dw0 = random_values(rng, dim);

      DeviceArray<bf16> h(to_bf16(c.residual)), w(to_bf16(c.weight)), d_h_bf16(n);
      DeviceArray<float> g_rstd(to_f32(rstd)), g_dy(to_f32(dy)), g_dh(to_f32(d_h0)), g_dw(to_f32(dw0));
      DeviceArray<float> partials(bc::rmsnorm_partials_floats(rows, dim));
      bc::RmsNormBackward p;
      p.h = h.get(), p.weight = w.get(), p.rstd = g_rstd.get(), p.dy = g_dy.get(), p.d_h = g_dh.get();
      p.d_h_bf16 = d_h_bf16.get(), p.d_weight = frozen ? nullptr : g_dw.get(), p.partials = partials.get();
      p.n_rows = rows, p.dim = dim;
      bc::rmsnorm_backward(p, nullptr);

      std::vector<double> dx(n), dw = dw0;
      backend::RmsNormBackwardParams<double> cp{c.residual.data(), c.weight.data(), rstd.data(), dy.data(),
                                                dx.data(),         frozen ? nullptr : dw.data(), rows, dim};
      backend::cpu::rmsnorm_backward(cp);
      for (int64_t i = 0; i < n; ++i) dx[i] += d_h0[i];
      // fp32 throughout on exact inputs: per element a few roundings (~4u),
      // and the row dot product (per-thread sums of <= dim/256 terms, then a
      // 10-level tree) errs by <= (dim/256 + 12) u Σ|terms|, which enters dx
      // as xhat · that / dim. The weight gradient sums rows in fixed chunks
      // (<= rows/256 + 1 per chunk, then <= 256 chunks): <= (rows + 3) u Σ|terms|.
      // Both are below 1e-5 of (|expected| + rms) for these sizes (|xhat| <= ~4).
      const std::vector<float> got = g_dh.download();
      expect_close(got, dx, 1e-5, name + " d_h");
      std::printf("[ops] %-44s max err %.3e (rtol 1e-5 of |e| + rms)\n", (name + " d_h").c_str(),
                  max_abs_diff(widen(got), dx));
      std::vector<bf16> copy(n);
      for (int64_t i = 0; i < n; ++i) copy[i] = __float2bfloat16_rn(got[i]);
      expect_same_bits(d_h_bf16.download(), copy, name + " d_h_bf16 = bf16(d_h)");
      if (!frozen) {
        const std::vector<float> gdw = g_dw.download();
        expect_close(gdw, dw, 1e-5, name + " d_weight");
        std::printf("[ops] %-44s max err %.3e (rtol 1e-5 of |e| + rms)\n", (name + " d_weight").c_str(),
                    max_abs_diff(widen(gdw), dw));
      } else {
        EXPECT_EQ(max_abs_diff(widen(g_dw.download()), widen(to_f32(dw0))), 0.0) << "frozen weight's gradient changed";
      }
    }
}

// ---- RoPE ----

TEST(CudaLayers, RopeForwardAndInverseAtForestPositions) {
  DUET_OPS_REQUIRE_GPU();
  DUET_SEEDED_RNG(rng);
  for (int64_t head_dim : {128, 20}) {
    const int64_t T = 67, hq = 4, hkv = 2, row = (hq + 2 * hkv) * head_dim;  // fused q|k|v rows
    std::vector<double> qkv = random_bf16_values(rng, T * row, -2, 2);
    std::vector<int32_t> pos(T);
    for (auto& x : pos) x = static_cast<int32_t>(random_int(rng, 0, 8191));
    std::vector<float> inv_freq(head_dim / 2);
    for (int64_t i = 0; i < head_dim / 2; ++i)
      inv_freq[i] = static_cast<float>(1.0 / std::pow(10000.0, 2.0 * i / head_dim));
    for (bool inverse : {false, true}) {
      const std::string name = "rope D " + std::to_string(head_dim) + (inverse ? " inverse" : "");
      SCOPED_TRACE(name);
      DeviceArray<bf16> g(to_bf16(qkv));
      DeviceArray<int32_t> g_pos(pos);
      DeviceArray<float> g_freq(inv_freq);
      bc::Rope p;
      p.q = g.get(), p.k = g.get() + hq * head_dim, p.q_row_stride = p.k_row_stride = row;
      p.positions = g_pos.get(), p.inv_freq = g_freq.get();
      p.n_tokens = T, p.n_q_heads = hq, p.n_kv_heads = hkv, p.head_dim = head_dim, p.inverse = inverse;
      bc::rope(p, nullptr);
      const std::vector<double> got = widen(g.download());

      std::vector<double> expected = qkv;
      backend::RopeParams<double> cp;
      cp.q = expected.data(), cp.k = expected.data() + hq * head_dim, cp.q_row_stride = cp.k_row_stride = row;
      cp.n_tokens = T, cp.n_q_heads = hq, cp.n_kv_heads = hkv, cp.head_dim = head_dim;
      cp.positions = pos.data(), cp.inv_freq = inv_freq.data(), cp.fp32_angles = true;
      inverse ? backend::cpu::rope_backward(cp) : backend::cpu::rope_forward(cp);
      // Naive (transformers in bf16): cos/sin rounded to bf16, x*cos and
      // rotate_half(x)*sin each rounded, then their sum rounded.
      std::vector<double> naive = qkv;
      const int64_t half = head_dim / 2;
      for (int64_t t = 0; t < T; ++t)
        for (int64_t h = 0; h < hq + hkv; ++h)
          for (int64_t i = 0; i < half; ++i) {
            const double angle = static_cast<float>(static_cast<float>(pos[t]) * inv_freq[i]);
            const double cs = round_bf16(std::cos(angle)), sn = round_bf16((inverse ? -1 : 1) * std::sin(angle));
            double* x = naive.data() + t * row + h * head_dim;
            const double a = qkv[t * row + h * head_dim + i], b = qkv[t * row + h * head_dim + i + half];
            x[i] = round_bf16(round_bf16(a * cs) + round_bf16(-b * sn));
            x[i + half] = round_bf16(round_bf16(b * cs) + round_bf16(a * sn));
          }
      expect_within_naive(name, got, expected, naive);
      // v (after q and k in each row) is untouched.
      double v_diff = 0;
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = (hq + hkv) * head_dim; c < row; ++c) v_diff = std::max(v_diff, std::abs(got[t * row + c] - qkv[t * row + c]));
      EXPECT_EQ(v_diff, 0.0) << "rope wrote outside q and k";
    }
  }
}

// ---- SwiGLU ----

TEST(CudaLayers, SwiGluForwardBackward) {
  DUET_OPS_REQUIRE_GPU();
  DUET_SEEDED_RNG(rng);
  for (int64_t dim : {1024, 100}) {
    const int64_t rows = 17, n = rows * dim;
    const std::vector<double> gu = random_bf16_values(rng, rows * 2 * dim, -4, 4), dh = random_bf16_values(rng, n);
    std::vector<double> gate(n), up(n);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < dim; ++c) gate[r * dim + c] = gu[r * 2 * dim + c], up[r * dim + c] = gu[r * 2 * dim + dim + c];
    DeviceArray<bf16> g_gu(to_bf16(gu)), out(n), d_out(to_bf16(dh)), d_gu(rows * 2 * dim);
    bc::swiglu_forward({g_gu.get(), out.get(), rows, dim}, nullptr);
    bc::swiglu_backward({g_gu.get(), d_out.get(), d_gu.get(), rows, dim}, nullptr);

    std::vector<double> h(n), dg(n), du(n);
    backend::cpu::swiglu_forward(backend::SwiGluParams<double>{gate.data(), up.data(), h.data(), rows, dim});
    backend::cpu::swiglu_backward(
        backend::SwiGluBackwardParams<double>{gate.data(), up.data(), dh.data(), dg.data(), du.data(), rows, dim});
    // Naive (torch eager bf16): silu rounded, then the product rounded; its
    // autograd: d_silu = bf16(dh up), d_up = bf16(dh silu_bf16), d_gate = bf16(d_silu silu'(g)).
    std::vector<double> nh(n), ndg(n), ndu(n);
    for (int64_t i = 0; i < n; ++i) {
      const float g = static_cast<float>(gate[i]);
      const double s = 1.0 / (1.0 + std::exp(-static_cast<double>(g)));
      const double silu = round_bf16(g / (1.0f + std::exp(-g)));
      nh[i] = round_bf16(silu * up[i]);
      ndu[i] = round_bf16(dh[i] * silu);
      ndg[i] = round_bf16(round_bf16(dh[i] * up[i]) * s * (1 + g * (1 - s)));
    }
    const std::vector<double> got_d = widen(d_gu.download());
    std::vector<double> got_dg(n), got_du(n);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < dim; ++c)
        got_dg[r * dim + c] = got_d[r * 2 * dim + c], got_du[r * dim + c] = got_d[r * 2 * dim + dim + c];
    const std::string name = "swiglu dim " + std::to_string(dim);
    expect_within_naive(name + " out", widen(out.download()), h, nh);
    expect_within_naive(name + " d_gate", got_dg, dg, ndg);
    expect_within_naive(name + " d_up", got_du, du, ndu);
  }
}

// ---- bias gradient ----

TEST(CudaLayers, BiasBackwardDeterministic) {
  DUET_OPS_REQUIRE_GPU();
  DUET_SEEDED_RNG(rng);
  for (auto [rows, dim, ld] : {std::tuple<int64_t, int64_t, int64_t>{300, 200, 208}, {1000, 37, 40}, {3, 8, 8}}) {
    const std::string name = "bias backward " + std::to_string(rows) + "x" + std::to_string(dim);
    SCOPED_TRACE(name);
    const std::vector<double> dy = random_bf16_values(rng, rows * ld), db0 = random_values(rng, dim);
    DeviceArray<bf16> g_dy(to_bf16(dy));
    DeviceArray<float> g_db(to_f32(db0)), partials(bc::rmsnorm_partials_floats(rows, dim));
    bc::bias_backward({g_dy.get(), ld, g_db.get(), partials.get(), rows, dim}, nullptr);
    const std::vector<float> first = g_db.download();
    std::vector<double> expected = db0, bound(dim);
    for (int64_t c = 0; c < dim; ++c) {
      double abs_sum = std::abs(db0[c]);
      for (int64_t r = 0; r < rows; ++r) expected[c] += dy[r * ld + c], abs_sum += std::abs(dy[r * ld + c]);
      // chunks of <= rows/256 + 1 rows summed in fp32, then <= 256 chunk sums, then one add
      bound[c] = (rows / 256.0 + 1 + 256 + 2) * kU32 * abs_sum;
    }
    expect_within_bound(name, widen(first), expected, bound);
    g_db.upload(to_f32(db0));
    bc::bias_backward({g_dy.get(), ld, g_db.get(), partials.get(), rows, dim}, nullptr);
    expect_same_bits(g_db.download(), first, name + " rerun");
  }
}

// ---- conversions ----

TEST(CudaLayers, Conversions) {
  DUET_OPS_REQUIRE_GPU();
  DUET_SEEDED_RNG(rng);
  const int64_t n = 100003;
  const std::vector<double> x = random_values(rng, n, -100, 100);
  DeviceArray<float> in(to_f32(x)), filled(n);
  DeviceArray<bf16> out(n);
  bc::convert_f32_to_bf16(in.get(), out.get(), n, nullptr);
  expect_same_bits(out.download(), to_bf16(x), "convert_f32_to_bf16 (round to nearest even)");
  bc::fill_f32(filled.get(), 0.25f, n, nullptr);
  EXPECT_EQ(max_abs_diff(widen(filled.download()), std::vector<double>(n, 0.25)), 0.0);
}

TEST(CudaLayers, Validation) {
  DUET_OPS_REQUIRE_GPU();
  DeviceArray<bf16> a(64);
  DeviceArray<float> f(64);
  expect_error([&] { bc::embedding_forward({nullptr, a.get(), a.get(), 4, 4, 4}, nullptr); }, "embedding: ids is null");
  expect_error([&] { bc::embedding_backward({nullptr, nullptr, nullptr, 0, f.get(), f.get(), 0, 0, 4}, nullptr); },
               "embedding backward: vocab must be positive");
  bc::Rope r;
  r.q = a.get(), r.n_tokens = 1, r.n_q_heads = 1, r.head_dim = 7, r.q_row_stride = 7;
  expect_error([&] { bc::rope(r, nullptr); }, "rope: head_dim (7) must be even");
  bc::AddRmsNormForward nf;
  nf.residual = a.get(), nf.branch = a.get(), nf.weight = a.get(), nf.y = a.get(), nf.rstd = f.get(), nf.n_rows = 1,
  nf.dim = 8;
  expect_error([&] { bc::add_rmsnorm_forward(nf, nullptr); }, "add_rmsnorm: h_out is null");
  expect_error([&] { bc::bias_backward({a.get(), 4, f.get(), f.get(), 2, 8}, nullptr); },
               "bias backward: ld (4) is smaller than a row");
  expect_error([&] { bc::swiglu_forward({a.get(), nullptr, 2, 8}, nullptr); }, "swiglu: out is null");
}

}  // namespace
}  // namespace duet::test::ops
