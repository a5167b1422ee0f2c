// Forest-masked attention against a dense reference written from the
// definition, on random packed forests; tile classification; gradients.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>

#include "backend/attention.hpp"
#include "gradcheck.hpp"
#include "helpers.hpp"

namespace duet::test {
namespace {

using backend::AttentionBackwardParams;
using backend::AttentionParams;

struct Case {
  int64_t n = 0, hq = 0, hkv = 0, dim = 0;
  Forest forest;
  int64_t window = 0;
  std::vector<double> q, k, v, d_o;
};

Case random_case(std::mt19937_64& rng, int64_t n, int64_t hq, int64_t hkv, int64_t dim,
                 const ForestShape& shape = {}) {
  Case c;
  c.n = n;
  c.hq = hq;
  c.hkv = hkv;
  c.dim = dim;
  c.forest = random_forest(rng, n, shape);
  // Scores of a few units so the softmax is neither flat nor one-hot.
  c.q = random_values(rng, n * hq * dim, -2, 2);
  c.k = random_values(rng, n * hkv * dim, -2, 2);
  c.v = random_values(rng, n * hkv * dim);
  c.d_o = random_values(rng, n * hq * dim);
  return c;
}

struct Result {
  std::vector<double> o, lse, dq, dk, dv;
};

// Plain attention from the definition, in double: the dense mask built from
// visible_until (and the window), softmax over each query's visible keys.
Result dense_reference(const Case& c) {
  const int64_t n = c.n, hq = c.hq, hkv = c.hkv, dim = c.dim, rep = hq / hkv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(dim));
  std::vector<uint8_t> mask(n * n, 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      mask[i * n + j] = j <= i && i < c.forest.visible_until[j] &&
                        (c.window == 0 ||
                         c.forest.position[i] - c.forest.position[j] < c.window);
  Result r{std::vector<double>(n * hq * dim, 0), std::vector<double>(n * hq, 0),
           std::vector<double>(n * hq * dim, 0), std::vector<double>(n * hkv * dim, 0),
           std::vector<double>(n * hkv * dim, 0)};
  auto at = [dim](const std::vector<double>& x, int64_t heads, int64_t i, int64_t h) {
    return x.data() + (i * heads + h) * dim;
  };
  for (int64_t h = 0; h < hq; ++h) {
    const int64_t g = h / rep;
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> s(n, -std::numeric_limits<double>::infinity()), p(n, 0);
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < n; ++j)
        if (mask[i * n + j]) {
          double dot = 0;
          for (int64_t d = 0; d < dim; ++d) dot += at(c.q, hq, i, h)[d] * at(c.k, hkv, j, g)[d];
          s[j] = scale * dot;
          mx = std::max(mx, s[j]);
        }
      double sum = 0;
      for (int64_t j = 0; j < n; ++j)
        if (mask[i * n + j]) sum += std::exp(s[j] - mx);
      for (int64_t j = 0; j < n; ++j)
        if (mask[i * n + j]) p[j] = std::exp(s[j] - mx) / sum;
      r.lse[i * hq + h] = mx + std::log(sum);
      double* o = r.o.data() + (i * hq + h) * dim;
      for (int64_t j = 0; j < n; ++j)
        for (int64_t d = 0; d < dim; ++d) o[d] += p[j] * at(c.v, hkv, j, g)[d];
      // Softmax backward from its definition: dS_j = P_j (dP_j - sum_l P_l dP_l).
      const double* d_o = at(c.d_o, hq, i, h);
      std::vector<double> dp(n, 0);
      double pdp = 0;
      for (int64_t j = 0; j < n; ++j)
        if (mask[i * n + j]) {
          for (int64_t d = 0; d < dim; ++d) dp[j] += d_o[d] * at(c.v, hkv, j, g)[d];
          pdp += p[j] * dp[j];
        }
      for (int64_t j = 0; j < n; ++j) {
        if (!mask[i * n + j]) continue;
        const double ds = p[j] * (dp[j] - pdp);
        for (int64_t d = 0; d < dim; ++d) {
          r.dq[(i * hq + h) * dim + d] += scale * ds * at(c.k, hkv, j, g)[d];
          r.dk[(j * hkv + g) * dim + d] += scale * ds * at(c.q, hq, i, h)[d];
          r.dv[(j * hkv + g) * dim + d] += p[j] * d_o[d];
        }
      }
    }
  }
  return r;
}

struct Tiles {
  int64_t q = 64, k = 64;
  bool classify = true;
};

template <typename S>
struct KernelRun {
  std::vector<S> o, lse, dq, dk, dv;
};

// The kernel in precision S on packed tensors, outputs poisoned beforehand.
template <typename S>
KernelRun<S> run_kernel(const Case& c, Tiles tiles) {
  const std::vector<S> q = cast<S>(c.q), k = cast<S>(c.k), v = cast<S>(c.v), d_o = cast<S>(c.d_o);
  KernelRun<S> r{poisoned<S>(c.q.size()), poisoned<S>(c.n * c.hq), poisoned<S>(c.q.size()),
           poisoned<S>(c.k.size()), poisoned<S>(c.v.size())};
  AttentionParams<S> f;
  f.n_tokens = c.n;
  f.n_q_heads = c.hq;
  f.n_kv_heads = c.hkv;
  f.head_dim = c.dim;
  f.visible_until = c.forest.visible_until.data();
  f.positions = c.forest.position.data();
  f.window = c.window;
  f.tile_q = tiles.q;
  f.tile_k = tiles.k;
  f.classify_tiles = tiles.classify;
  f.set_packed_strides();
  f.q = q.data();
  f.k = k.data();
  f.v = v.data();
  f.o = r.o.data();
  f.lse = r.lse.data();
  backend::cpu::attention_forward(f);

  AttentionBackwardParams<S> b;
  static_cast<backend::AttentionShape&>(b) = f;
  b.set_packed_strides();
  b.q = q.data();
  b.k = k.data();
  b.v = v.data();
  b.o = r.o.data();
  b.lse = r.lse.data();
  b.d_o = d_o.data();
  b.dq = r.dq.data();
  b.dk = r.dk.data();
  b.dv = r.dv.data();
  backend::cpu::attention_backward(b);
  return r;
}

template <typename S>
void expect_matches(const KernelRun<S>& got, const Result& want, double rtol, const std::string& what) {
  SCOPED_TRACE(what);
  expect_close(got.o, want.o, rtol, "o");
  expect_close(got.lse, want.lse, rtol, "lse");
  expect_close(got.dq, want.dq, rtol, "dq");
  expect_close(got.dk, want.dk, rtol, "dk");
  expect_close(got.dv, want.dv, rtol, "dv");
}

std::string describe(const Case& c, Tiles t) {
  return "T=" + std::to_string(c.n) + " Hq=" + std::to_string(c.hq) + " Hkv=" +
         std::to_string(c.hkv) + " D=" + std::to_string(c.dim) + " tiles " +
         std::to_string(t.q) + "x" + std::to_string(t.k) + (t.classify ? "" : " unclassified") +
         " window=" + std::to_string(c.window) + " used=" + std::to_string(c.forest.used);
}

TEST(Attention, MatchesDenseReferenceOnRandomForests) {
  DUET_SEEDED_RNG(rng);
  const std::pair<int64_t, int64_t> heads[] = {{3, 3}, {4, 2}, {8, 2}};  // Hq/Hkv = 1, 2, 4
  const Tiles tilings[] = {{64, 64}, {7, 16}, {16, 7}, {1, 1}, {13, 64}};
  for (auto [hq, hkv] : heads)
    for (Tiles t : tilings) {
      Case c = random_case(rng, random_int(rng, 60, 220), hq, hkv, random_int(rng, 1, 3) * 8);
      const Result want = dense_reference(c);
      // Double: only rounding differs from the reference (sums in other orders).
      expect_matches(run_kernel<double>(c, t), want, 1e-12, describe(c, t));
    }
}

// fp32 against fp64 on the same inputs: each score is a D-term dot product and
// each output a softmax-weighted sum over up to T keys; with unit roundoff
// u = 6e-8 the errors grow like u sqrt(K) (random rounding) for K-term sums,
// so o and lse agree to ~2e-6 and 1e-5 relative leaves margin. The gradients
// go through dS = P (dP - D), which cancels where dP ~ D, and P = exp(s - lse)
// turns absolute score errors into relative ones: they reach ~6e-6 of the
// tensor's scale (observed over many seeds), so 3e-5 for them.
TEST(Attention, FloatAgreesWithDouble) {
  DUET_SEEDED_RNG(rng);
  for (auto [hq, hkv] : {std::pair<int64_t, int64_t>{4, 4}, {4, 1}}) {
    Case c = random_case(rng, 256, hq, hkv, 64);
    SCOPED_TRACE(describe(c, {}));
    const KernelRun<double> d = run_kernel<double>(c, {});
    const KernelRun<float> f = run_kernel<float>(c, {});
    expect_close(f.o, d.o, 1e-5, "o");
    expect_close(f.lse, d.lse, 1e-5, "lse");
    expect_close(f.dq, d.dq, 3e-5, "dq");
    expect_close(f.dk, d.dk, 3e-5, "dk");
    expect_close(f.dv, d.dv, 3e-5, "dv");
  }
}

TEST(Attention, TileClassificationChangesNothing) {
  DUET_SEEDED_RNG(rng);
  for (int trial = 0; trial < 4; ++trial) {
    Case c = random_case(rng, random_int(rng, 100, 300), 4, 2, 16);
    if (trial % 2) c.window = random_int(rng, 2, 40);
    const Tiles t{random_int(rng, 1, 40), random_int(rng, 1, 40), true};
    SCOPED_TRACE(describe(c, t));
    // Same tiles, skipping on or off: skipped tiles contribute exactly nothing
    // and full tiles take the same arithmetic, so the results are identical.
    const KernelRun<float> on = run_kernel<float>(c, t);
    const KernelRun<float> off = run_kernel<float>(c, {t.q, t.k, false});
    expect_bitwise_equal(on.o, off.o, "o");
    expect_bitwise_equal(on.lse, off.lse, "lse");
    expect_bitwise_equal(on.dq, off.dq, "dq");
    expect_bitwise_equal(on.dk, off.dk, "dk");
    expect_bitwise_equal(on.dv, off.dv, "dv");
    // Against one key per tile and no classification at all: the same values up
    // to the summation order.
    const KernelRun<double> base = run_kernel<double>(c, {1, 1, false});
    expect_matches(run_kernel<double>(c, t), Result{base.o, base.lse, base.dq, base.dk, base.dv},
                   1e-12, "tile 1x1 unclassified vs classified");
  }
}

// classify_tile against the dense mask: Skip exactly when no pair in the
// (block, tile) is visible and Full exactly when all are (min/max of
// visible_until is exact for depth-first forests). With a window it must stay
// sound: Skip => none visible, Full => all visible.
TEST(Attention, TileClassesMatchDenseMask) {
  DUET_SEEDED_RNG(rng);
  int64_t counts[3] = {0, 0, 0};
  for (int trial = 0; trial < 20; ++trial) {
    const Forest f = random_forest(rng, random_int(rng, 50, 400));
    // Small tiles make Full pairs common, large ones Partial.
    const int64_t max_tile = trial % 2 ? 70 : 12;
    const int64_t n = f.size(), tq = random_int(rng, 1, max_tile), tk = random_int(rng, 1, max_tile);
    const int64_t window = trial % 3 == 2 ? random_int(rng, 1, 30) : 0;
    SCOPED_TRACE(::testing::Message() << "T=" << n << " tiles " << tq << "x" << tk
                                      << " window " << window);
    for (int64_t qb = 0; qb < n; qb += tq)
      for (int64_t kb = 0; kb < n; kb += tk) {
        backend::QueryBlock q{int32_t(qb), int32_t(std::min(n, qb + tq)), INT32_MAX, INT32_MIN};
        backend::KeyTile k{int32_t(kb), int32_t(std::min(n, kb + tk)), INT32_MAX, INT32_MIN,
                           INT32_MAX, INT32_MIN};
        for (int64_t i = q.begin; i < q.end; ++i) {
          q.min_position = std::min(q.min_position, f.position[i]);
          q.max_position = std::max(q.max_position, f.position[i]);
        }
        for (int64_t j = k.begin; j < k.end; ++j) {
          k.min_visible_until = std::min(k.min_visible_until, f.visible_until[j]);
          k.max_visible_until = std::max(k.max_visible_until, f.visible_until[j]);
          k.min_position = std::min(k.min_position, f.position[j]);
          k.max_position = std::max(k.max_position, f.position[j]);
        }
        int64_t visible = 0;
        for (int64_t i = q.begin; i < q.end; ++i)
          for (int64_t j = k.begin; j < k.end; ++j)
            visible += backend::attention_visible(i, j, f.visible_until.data(),
                                                  f.position.data(), window);
        const int64_t all = int64_t{q.end - q.begin} * (k.end - k.begin);
        const backend::TileKind kind = backend::classify_tile(q, k, window);
        counts[static_cast<int>(kind)]++;
        if (kind == backend::TileKind::Skip) {
          EXPECT_EQ(visible, 0) << qb << "," << kb;
        }
        if (kind == backend::TileKind::Full) {
          EXPECT_EQ(visible, all) << qb << "," << kb;
        }
        if (window == 0 && visible == 0) {
          EXPECT_EQ(kind, backend::TileKind::Skip) << qb << "," << kb;
        }
        if (window == 0 && visible == all) {
          EXPECT_EQ(kind, backend::TileKind::Full) << qb << "," << kb;
        }
      }
  }
  // The forests exercise all three classes.
  SCOPED_TRACE(::testing::Message() << "skip " << counts[0] << " full " << counts[1] << " partial "
                                    << counts[2]);
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[2], 0);
}

TEST(Attention, SlidingWindowMatchesDenseReference) {
  DUET_SEEDED_RNG(rng);
  for (int64_t window : {1, 5, 17, 64}) {
    Case c = random_case(rng, 200, 4, 2, 8, {.max_segment = 30});
    c.window = window;
    const Tiles t{random_int(rng, 4, 32), random_int(rng, 4, 32)};
    expect_matches(run_kernel<double>(c, t), dense_reference(c), 1e-12, describe(c, t));
  }
}

TEST(Attention, GradientsMatchFiniteDifferences) {
  DUET_SEEDED_RNG(rng);
  for (auto [hq, hkv] : {std::pair<int64_t, int64_t>{2, 2}, {4, 2}, {4, 1}}) {
    Case c = random_case(rng, 40, hq, hkv, 8, {.max_segment = 8});
    SCOPED_TRACE(describe(c, {5, 6}));
    std::vector<double> o(c.q.size()), lse(c.n * hq), dq, dk, dv;
    AttentionParams<double> f;
    f.n_tokens = c.n;
    f.n_q_heads = hq;
    f.n_kv_heads = hkv;
    f.head_dim = c.dim;
    f.visible_until = c.forest.visible_until.data();
    f.tile_q = 5;  // tiles cut through segments
    f.tile_k = 6;
    f.set_packed_strides();
    GradCheck check;
    check.inputs = {{"q", &c.q, &dq}, {"k", &c.k, &dk}, {"v", &c.v, &dv}};
    check.outputs = {&o};
    check.forward = [&] {
      f.q = c.q.data();
      f.k = c.k.data();
      f.v = c.v.data();
      f.o = o.data();
      f.lse = lse.data();
      backend::cpu::attention_forward(f);
    };
    check.backward = [&] {
      AttentionBackwardParams<double> b;
      static_cast<backend::AttentionShape&>(b) = f;
      b.set_packed_strides();
      b.q = c.q.data();
      b.k = c.k.data();
      b.v = c.v.data();
      b.o = o.data();
      b.lse = lse.data();
      b.d_o = check.d_outputs[0].data();
      b.dq = dq.data();
      b.dk = dk.data();
      b.dv = dv.data();
      backend::cpu::attention_backward(b);
    };
    run_gradcheck(check, rng);
  }
}

// q, k, v as views into one fused [T, (Hq + 2 Hkv) D] projection output and
// the gradients into one fused buffer; o with a padded row. Same numbers as the
// packed layout, and nothing written outside the views.
TEST(Attention, RowStridesAddressFusedBuffers) {
  DUET_SEEDED_RNG(rng);
  const int64_t hq = 4, hkv = 2, dim = 8;
  Case c = random_case(rng, 120, hq, hkv, dim);
  const KernelRun<double> packed = run_kernel<double>(c, {16, 16});
  const int64_t n = c.n, qw = hq * dim, kw = hkv * dim, fused = qw + 2 * kw, o_stride = qw + 3;
  std::vector<double> qkv(n * fused);
  for (int64_t i = 0; i < n; ++i) {
    std::copy_n(c.q.begin() + i * qw, qw, qkv.begin() + i * fused);
    std::copy_n(c.k.begin() + i * kw, kw, qkv.begin() + i * fused + qw);
    std::copy_n(c.v.begin() + i * kw, kw, qkv.begin() + i * fused + qw + kw);
  }
  std::vector<double> o = poisoned<double>(n * o_stride), lse = poisoned<double>(n * hq);
  AttentionParams<double> f;
  f.n_tokens = n;
  f.n_q_heads = hq;
  f.n_kv_heads = hkv;
  f.head_dim = dim;
  f.visible_until = c.forest.visible_until.data();
  f.tile_q = f.tile_k = 16;
  f.q = qkv.data();
  f.k = qkv.data() + qw;
  f.v = qkv.data() + qw + kw;
  f.q_row_stride = f.k_row_stride = f.v_row_stride = fused;
  f.o = o.data();
  f.o_row_stride = o_stride;
  f.lse = lse.data();
  backend::cpu::attention_forward(f);

  std::vector<double> d_o = poisoned<double>(n * o_stride), d_qkv = poisoned<double>(n * fused);
  for (int64_t i = 0; i < n; ++i) std::copy_n(c.d_o.begin() + i * qw, qw, d_o.begin() + i * o_stride);
  AttentionBackwardParams<double> b;
  static_cast<backend::AttentionShape&>(b) = f;
  b.q = f.q;
  b.k = f.k;
  b.v = f.v;
  b.q_row_stride = b.k_row_stride = b.v_row_stride = fused;
  b.o = o.data();
  b.o_row_stride = b.do_row_stride = o_stride;
  b.lse = lse.data();
  b.d_o = d_o.data();
  b.dq = d_qkv.data();
  b.dk = d_qkv.data() + qw;
  b.dv = d_qkv.data() + qw + kw;
  b.dq_row_stride = b.dk_row_stride = b.dv_row_stride = fused;
  backend::cpu::attention_backward(b);

  for (int64_t i = 0; i < n; ++i) {
    for (int64_t e = 0; e < qw; ++e) {
      EXPECT_EQ(o[i * o_stride + e], packed.o[i * qw + e]);
      EXPECT_EQ(d_qkv[i * fused + e], packed.dq[i * qw + e]);
    }
    for (int64_t e = qw; e < o_stride; ++e) EXPECT_TRUE(std::isnan(o[i * o_stride + e]));
    for (int64_t e = 0; e < kw; ++e) {
      EXPECT_EQ(d_qkv[i * fused + qw + e], packed.dk[i * kw + e]);
      EXPECT_EQ(d_qkv[i * fused + qw + kw + e], packed.dv[i * kw + e]);
    }
  }
  expect_bitwise_equal(lse, packed.lse, "lse");
}

TEST(Attention, ResultsDoNotDependOnThreadCount) {
  DUET_SEEDED_RNG(rng);
  Case c = random_case(rng, 300, 4, 2, 16);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const KernelRun<float> one = run_kernel<float>(c, {32, 32});
  omp_set_num_threads(3);
  const KernelRun<float> three = run_kernel<float>(c, {32, 32});
  omp_set_num_threads(saved);
  expect_bitwise_equal(one.o, three.o, "o");
  expect_bitwise_equal(one.dq, three.dq, "dq");
  expect_bitwise_equal(one.dk, three.dk, "dk");
  expect_bitwise_equal(one.dv, three.dv, "dv");
}

TEST(Attention, RejectsBadArguments) {
  std::vector<float> x(4 * 2 * 4, 1.0f), o(x.size()), lse(8);
  std::vector<int32_t> vu = {1, 2, 3, 4};
  AttentionParams<float> f;
  f.n_tokens = 4;
  f.n_q_heads = 2;
  f.n_kv_heads = 2;
  f.head_dim = 4;
  f.visible_until = vu.data();
  f.set_packed_strides();
  f.q = f.k = f.v = x.data();
  f.o = o.data();
  f.lse = lse.data();
  EXPECT_NO_THROW(backend::cpu::attention_forward(f));
  auto message = [&](AttentionParams<float> p) {
    try {
      backend::cpu::attention_forward(p);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto bad = f;
  bad.n_kv_heads = 3;
  EXPECT_NE(message(bad).find("n_q_heads (2) must be a multiple of n_kv_heads (3)"), std::string::npos)
      << message(bad);
  bad = f;
  bad.v = nullptr;
  EXPECT_NE(message(bad).find("attention: v is null"), std::string::npos) << message(bad);
  bad = f;
  bad.k_row_stride = 7;
  EXPECT_NE(message(bad).find("k_row_stride"), std::string::npos) << message(bad);
  std::vector<int32_t> self_blind = {1, 1, 3, 4};  // token 1 would not see itself
  bad = f;
  bad.visible_until = self_blind.data();
  EXPECT_NE(message(bad).find("visible_until[1] = 1"), std::string::npos) << message(bad);
  std::vector<int32_t> past_end = {1, 5, 3, 4};
  bad.visible_until = past_end.data();
  EXPECT_NE(message(bad).find("visible_until[1] = 5"), std::string::npos) << message(bad);
  bad = f;
  bad.window = 4;  // a window needs positions
  EXPECT_NE(message(bad).find("positions is null"), std::string::npos) << message(bad);
}

}  // namespace
}  // namespace duet::test
