// cuBLASLt products (backend/cuda/gemm.hpp) against the product in double on
// the same bf16 inputs: every transpose combination, bf16 and fp32 outputs,
// beta = 1 accumulation, the bias epilogue, padded leading dimensions,
// sizes that are not multiples of 8, and tuned plans (and their text).
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "backend/cuda/gemm.hpp"
#include "backend/cuda/ops_helpers.hpp"

namespace duet::test::ops {
namespace {

using backend::cuda::DType;
using backend::cuda::Gemm;
using backend::cuda::GemmParams;

struct Shape {
  int64_t m, n, k;
  bool a_trans, b_trans;
  DType d_type;
  bool bias;
  float beta;
  bool padded = false;  // every ld = its row rounded up to 8, plus 8 (else packed)
};

int64_t ld_for(int64_t cols, bool padded) { return padded ? (cols + 7) / 8 * 8 + 8 : cols; }

std::string describe(const Shape& s) {
  return "gemm m" + std::to_string(s.m) + " n" + std::to_string(s.n) + " k" + std::to_string(s.k) +
         (s.a_trans ? " aT" : " aN") + (s.b_trans ? " bT" : " bN") + (s.d_type == DType::BF16 ? " bf16" : " f32") +
         (s.bias ? " bias" : "") + (s.beta != 0 ? " beta1" : "") + (s.padded ? " padded" : "");
}

// Runs one product on the GPU and checks it against double.
void check_product(Gemm& gemm, std::mt19937_64& rng, const Shape& s) {
  SCOPED_TRACE(describe(s));
  const int64_t a_rows = s.a_trans ? s.k : s.m, a_cols = s.a_trans ? s.m : s.k;
  const int64_t b_rows = s.b_trans ? s.n : s.k, b_cols = s.b_trans ? s.k : s.n;
  const int64_t lda = ld_for(a_cols, s.padded), ldb = ld_for(b_cols, s.padded), ldd = ld_for(s.n, s.padded);
  const std::vector<double> a = random_bf16_values(rng, a_rows * lda), b = random_bf16_values(rng, b_rows * ldb);
  const std::vector<double> bias = random_bf16_values(rng, s.n);
  std::vector<double> d0 = s.d_type == DType::BF16 ? random_bf16_values(rng, s.m * ldd) : random_values(rng, s.m * ldd);
  if (s.beta == 0)  // D is write-only then: poison it (the padding columns keep values, to see them untouched)
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = 0; j < s.n; ++j) d0[i * ldd + j] = std::numeric_limits<double>::quiet_NaN();
  auto A = [&](int64_t i, int64_t l) { return s.a_trans ? a[l * lda + i] : a[i * lda + l]; };
  auto B = [&](int64_t l, int64_t j) { return s.b_trans ? b[j * ldb + l] : b[l * ldb + j]; };

  // Oracle in double; naive bf16 = round(round(AB) + C) then + bias, each rounded;
  // fp32 bound: (2k + 4) u32 (Σ|a b| + |C| + |bias|) (fp32 accumulation,
  // allowing tensor-core truncation: 2u per add).
  std::vector<double> oracle = d0, naive = d0, bound(d0.size(), 0.0);
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t j = 0; j < s.n; ++j) {
      double sum = 0, abs_sum = 0;
      for (int64_t l = 0; l < s.k; ++l) {
        sum += A(i, l) * B(l, j);
        abs_sum += std::abs(A(i, l) * B(l, j));
      }
      const double c = s.beta != 0 ? s.beta * d0[i * ldd + j] : 0.0, bj = s.bias ? bias[j] : 0.0;
      oracle[i * ldd + j] = sum + c + bj;
      double nv = round_bf16(sum);
      if (s.beta != 0) nv = round_bf16(nv + c);
      if (s.bias) nv = round_bf16(nv + bj);
      naive[i * ldd + j] = nv;
      bound[i * ldd + j] = (2.0 * s.k + 4) * kU32 * (abs_sum + std::abs(c) + std::abs(bj));
    }

  DeviceArray<bf16> da(to_bf16(a)), db(to_bf16(b)), dbias(to_bf16(bias));
  GemmParams p;
  p.a = da.get(), p.b = db.get(), p.bias = s.bias ? dbias.get() : nullptr;
  p.a_trans = s.a_trans, p.b_trans = s.b_trans, p.d_type = s.d_type;
  p.m = s.m, p.n = s.n, p.k = s.k;
  p.lda = s.padded ? lda : 0, p.ldb = s.padded ? ldb : 0, p.ldd = s.padded ? ldd : 0;
  p.beta = s.beta;
  // Only the m × n block of D is compared; the padding columns must stay as they were.
  auto keep_padding = [&](std::vector<double>& v) {
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = s.n; j < ldd; ++j) v[i * ldd + j] = d0[i * ldd + j];
  };
  keep_padding(oracle);
  keep_padding(naive);
  if (s.d_type == DType::BF16) {
    DeviceArray<bf16> dd(to_bf16(d0));
    p.d = dd.get();
    gemm.run(p, nullptr);
    const std::vector<bf16> first = dd.download();
    expect_within_naive(describe(s), widen(first), oracle, naive);
    dd.upload(to_bf16(d0));
    gemm.run(p, nullptr);  // the cached plan, same bits
    expect_same_bits(dd.download(), first, describe(s) + " rerun");
  } else {
    DeviceArray<float> dd(to_f32(d0));
    p.d = dd.get();
    gemm.run(p, nullptr);
    for (int64_t i = 0; i < s.m; ++i)
      for (int64_t j = s.n; j < ldd; ++j) bound[i * ldd + j] = 0;  // padding untouched
    const std::vector<float> first = dd.download();
    expect_within_bound(describe(s), widen(first), oracle, bound);
    dd.upload(to_f32(d0));
    gemm.run(p, nullptr);
    expect_same_bits(dd.download(), first, describe(s) + " rerun");
  }
}

TEST(CudaGemm, EngineProductsAllTransposes) {
  DUET_OPS_REQUIRE_GPU();
  DUET_SEEDED_RNG(rng);
  Gemm gemm;
  // forward y = x Wᵀ (bf16), input gradient dx = dy W (bf16 and fp32),
  // weight gradient dW += dyᵀ x (fp32, beta 1), and aT bT for completeness.
  for (const Shape& s : {Shape{64, 96, 128, false, true, DType::BF16, false, 0},
                         Shape{256, 512, 384, false, true, DType::BF16, false, 0},
                         Shape{64, 128, 96, false, false, DType::BF16, false, 0},
                         Shape{64, 128, 96, false, false, DType::F32, false, 0},
                         Shape{96, 64, 136, true, false, DType::F32, false, 1.0f},
                         Shape{40, 56, 48, true, true, DType::F32, false, 0},
                         Shape{40, 56, 48, true, true, DType::BF16, false, 1.0f}})
    check_product(gemm, rng, s);
}

TEST(CudaGemm, OddSizesAndPaddedLeadingDimensions) {
  DUET_OPS_REQUIRE_GPU();
  DUET_SEEDED_RNG(rng);
  Gemm gemm;
  // m, n, k not multiples of 8 (cuBLASLt takes any sizes); the leading
  // dimensions stay multiples of 8 elements (16-byte rows, which validate()
  // requires), here padded beyond the row. Bias with bf16 D, beta 0 and 1.
  for (bool at : {false, true})
    for (bool bt : {false, true})
      for (DType dt : {DType::BF16, DType::F32})
        for (bool bias : {false, true}) {
          if (bias && dt == DType::F32) continue;
          check_product(gemm, rng, Shape{37, 45, 27, at, bt, dt, bias, dt == DType::F32 || bias ? 1.0f : 0.0f, true});
        }
  check_product(gemm, rng, Shape{1, 3, 5, false, true, DType::BF16, true, 0.0f, true});
  check_product(gemm, rng, Shape{200, 328, 1000, false, true, DType::BF16, true, 0.0f, false});  // q/k/v with bias
}

// The products of one kind of layer at `tokens` tokens, as the engine runs them.
std::vector<Shape> layer_products(int64_t tokens) {
  return {Shape{tokens, 256, 192, false, true, DType::BF16, false, 0},      // forward
          Shape{tokens, 192, 256, false, false, DType::F32, false, 0},      // input gradient
          Shape{256, 192, tokens, true, false, DType::F32, false, 1.0f},    // weight gradient
          Shape{tokens, 200, 64, false, true, DType::BF16, true, 0, true}};  // bias, padded
}

GemmParams shape_only(const Shape& s) {
  GemmParams p;
  p.m = s.m, p.n = s.n, p.k = s.k, p.a_trans = s.a_trans, p.b_trans = s.b_trans, p.d_type = s.d_type;
  p.bias = s.bias ? backend::cuda::kShapeOnlyBias : nullptr;
  return p;
}

TEST(CudaGemm, TunedPlansServeEveryTokenCountOfTheirBucket) {
  DUET_OPS_REQUIRE_GPU();
  DUET_SEEDED_RNG(rng);
  Gemm gemm;
  // Buckets end at powers of two and 1.5 times them (the engine's default).
  EXPECT_EQ(gemm.bucket_of(1), 1);
  EXPECT_EQ(gemm.bucket_of(5), 6);
  EXPECT_EQ(gemm.bucket_of(7), 8);
  EXPECT_EQ(gemm.bucket_of(6145), 8192);
  EXPECT_EQ(gemm.buckets_up_to(13), (std::vector<int64_t>{1, 2, 3, 4, 6, 8, 12, 16}));
  EXPECT_EQ(Gemm(backend::cuda::kGemmWorkspaceBytes, 1).bucket_of(5), 8);
  // Tuned at the ends of the buckets 257..384 and 385..512, as the engine
  // tunes its ladder; other token counts of each bucket use its choice:
  // every result within the bounds, none run untuned.
  std::vector<GemmParams> shapes;
  for (int64_t end : {384, 512})
    for (const Shape& s : layer_products(end)) shapes.push_back(shape_only(s));
  ASSERT_TRUE(gemm.tune(shapes, 8, nullptr));
  for (int64_t tokens : {384, 300, 512, 257, 400})
    for (const Shape& s : layer_products(tokens)) check_product(gemm, rng, s);
  EXPECT_EQ(gemm.untuned_runs(), 0);
  // A token count of the next bucket had no tuning: cuBLASLt's heuristic, counted.
  check_product(gemm, rng, layer_products(513)[0]);
  EXPECT_EQ(gemm.untuned_runs(), 2);  // check_product runs it twice
}

TEST(CudaGemm, TunedAlgorithmsRoundTripAsText) {
  DUET_OPS_REQUIRE_GPU();
  DUET_SEEDED_RNG(rng);
  Gemm first, second, untuned;
  std::vector<GemmParams> shapes;
  for (int64_t tokens : {64, 512})
    for (const Shape& s : layer_products(tokens)) shapes.push_back(shape_only(s));
  ASSERT_TRUE(first.tune(shapes, 16, nullptr));
  const std::string text = first.algorithms();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1 + static_cast<long>(shapes.size()));
  ASSERT_TRUE(second.use_algorithms(text));
  EXPECT_EQ(second.algorithms(), text);
  // The second computes with the first's algorithms: the same bits, no tuning of its own.
  const Shape s = layer_products(448)[2];  // the weight gradient: fp32, accumulating
  const std::vector<double> a = random_bf16_values(rng, s.k * s.m), b = random_bf16_values(rng, s.k * s.n);
  DeviceArray<bf16> da(to_bf16(a)), db(to_bf16(b));
  const std::vector<double> d0 = random_values(rng, s.m * s.n);
  std::vector<std::vector<float>> results;
  for (Gemm* g : {&first, &second}) {
    DeviceArray<float> dd(to_f32(d0));
    GemmParams p = shape_only(s);
    p.a = da.get(), p.b = db.get(), p.d = dd.get(), p.beta = s.beta;
    g->run(p, nullptr);
    results.push_back(dd.download());
  }
  expect_same_bits(results[1], results[0], "second Gemm with the first's algorithms");
  EXPECT_EQ(second.untuned_runs(), 0);
  // Another GPU or cuBLASLt (the header names them): not used; a damaged line fails.
  std::string other = text;
  other.replace(other.find("cublasLt"), 8, "cublasXX");
  EXPECT_FALSE(untuned.use_algorithms(other));
  EXPECT_EQ(untuned.algorithms(), text.substr(0, text.find('\n') + 1));
  expect_error([&] { untuned.use_algorithms(text.substr(0, text.find('\n') + 1) + "12 x\n"); },
               "gemm algorithms: unreadable line");
}

TEST(CudaGemm, RefinedChoicesServeTheirExactCountsAndRoundTripAsText) {
  DUET_OPS_REQUIRE_GPU();
  DUET_SEEDED_RNG(rng);
  Gemm first, second, old_format;
  // Buckets tuned at their ends (384, 512), then every count the engine's
  // rows can bring in them (multiples of 64) refined, as the engine does.
  std::vector<GemmParams> ends, counts;
  for (int64_t end : {384, 512})
    for (const Shape& s : layer_products(end)) ends.push_back(shape_only(s));
  for (int64_t tokens = 320; tokens <= 512; tokens += 64)
    for (const Shape& s : layer_products(tokens)) counts.push_back(shape_only(s));
  EXPECT_TRUE(first.refine(counts, 4, nullptr));  // nothing tuned yet: nothing to refine
  EXPECT_EQ(first.refined_shapes(), 0);
  ASSERT_TRUE(first.tune(ends, 8, nullptr));
  ASSERT_TRUE(first.refine(counts, 4, nullptr));
  const int64_t refined = first.refined_shapes();
  EXPECT_LE(refined, static_cast<int64_t>(counts.size()));
  for (int64_t tokens = 320; tokens <= 512; tokens += 64)
    for (const Shape& s : layer_products(tokens)) check_product(first, rng, s);
  EXPECT_EQ(first.untuned_runs(), 0);
  // The text carries the exact choices; a Gemm given it refines nothing more
  // (a resumed run computes with the saved choices alone).
  const std::string text = first.algorithms();
  EXPECT_EQ(text.substr(0, text.find('\n')).find("duet gemm algorithms 2 "), 0u);
  ASSERT_TRUE(second.use_algorithms(text));
  EXPECT_EQ(second.refined_shapes(), refined);
  ASSERT_TRUE(second.refine(counts, 4, nullptr));
  EXPECT_EQ(second.algorithms(), text);
  // An exact line for one count (the 448-token forward, given the algorithm
  // its bucket, 385..512, chose) is read, counted and used.
  const std::string header = text.substr(0, text.find('\n') + 1);
  const std::string bucket = "\nbucket 512 256 192 0 1 0 0 ";  // the forward's kind at 512
  ASSERT_NE(text.find(bucket), std::string::npos) << text;
  const size_t words = text.find(bucket) + bucket.size();
  Gemm injected;
  ASSERT_TRUE(injected.use_algorithms(header + "exact 448 256 192 0 1 0 0 " +
                                      text.substr(words, text.find('\n', words) - words) + "\n"));
  EXPECT_EQ(injected.refined_shapes(), 1);
  check_product(injected, rng, layer_products(448)[0]);
  EXPECT_EQ(injected.untuned_runs(), 0);
  // Format 1 (session 7's checkpoints: bucket lines without the word) is still read.
  std::string v1 = "duet gemm algorithms 1 " + header.substr(std::string("duet gemm algorithms 2 ").size());
  for (size_t at = header.size(); at < text.size();) {
    const size_t end = text.find('\n', at) + 1;
    const std::string line = text.substr(at, end - at);
    if (line.rfind("bucket ", 0) == 0) v1 += line.substr(7);
    at = end;
  }
  ASSERT_TRUE(old_format.use_algorithms(v1));
  EXPECT_EQ(old_format.refined_shapes(), 0);
  check_product(old_format, rng, layer_products(448)[2]);
  EXPECT_EQ(old_format.untuned_runs(), 0);
  expect_error([&] { old_format.use_algorithms(header + "nearly 64 64 64 0 0 0 0\n"); },
               "gemm algorithms: unreadable line");
}

TEST(CudaGemm, ThinProductsSumInFp32WhateverTheTuningChooses) {
  // A LoRA adapter's products are thin (rank 8 or 16) with a long sum, where
  // cuBLASLt offers split-K algorithms; those reducing in bf16 (in place or
  // in the output type) would round the partial sums. Tuned and refined over
  // many counts, every bf16 product must stay within twice naive bf16's error.
  DUET_OPS_REQUIRE_GPU();
  DUET_SEEDED_RNG(rng);
  Gemm gemm;
  const auto thin = [](int64_t tokens, int64_t rank) {
    return std::vector<Shape>{Shape{tokens, rank, 2048, false, true, DType::BF16, false, 0},   // x · Aᵀ
                              Shape{tokens, 2048, rank, false, true, DType::BF16, false, 0},   // (x Aᵀ) · Bᵀ
                              Shape{rank, 2048, tokens, true, false, DType::F32, false, 1.0f}};  // dA
  };
  std::vector<GemmParams> ends, counts;
  for (int64_t rank : {8, 16}) {
    for (int64_t end : gemm.buckets_up_to(512))
      if (end >= 64)
        for (const Shape& s : thin(end, rank)) ends.push_back(shape_only(s));
    for (int64_t tokens = 64; tokens <= 512; tokens += 64)
      for (const Shape& s : thin(tokens, rank)) counts.push_back(shape_only(s));
  }
  ASSERT_TRUE(gemm.tune(ends, 16, nullptr));
  ASSERT_TRUE(gemm.refine(counts, 8, nullptr));
  for (int64_t rank : {8, 16})
    for (int64_t tokens : {192, 448, 512})
      for (const Shape& s : thin(tokens, rank)) check_product(gemm, rng, s);
  EXPECT_EQ(gemm.untuned_runs(), 0);
}

TEST(CudaGemm, Validation) {
  DUET_OPS_REQUIRE_GPU();
  Gemm gemm;
  DeviceArray<bf16> a(64 * 64), b(64 * 64), d(64 * 64);
  DeviceArray<float> f(64 * 64);
  GemmParams p;
  p.a = a.get(), p.b = b.get(), p.d = d.get(), p.m = 16, p.n = 16, p.k = 16;
  auto with = [&](auto change) {
    GemmParams q = p;
    change(q);
    return [&gemm, q] { gemm.run(q, nullptr); };
  };
  expect_error(with([](GemmParams& q) { q.lda = 20; }), "lda (20) must be a multiple of 8");
  expect_error(with([](GemmParams& q) { q.ldb = 8; }), "ldb (8) is smaller than a row");
  expect_error(with([](GemmParams& q) { q.n = 12, q.b_trans = true; }), "ldd (12) must be a multiple of 8");
  expect_error(with([&](GemmParams& q) { q.a = a.get() + 1; }), "a must be 16-byte aligned");
  expect_error(with([](GemmParams& q) { q.b = nullptr; }), "gemm: b is null");
  expect_error(with([&](GemmParams& q) { q.d = f.get(), q.d_type = DType::F32, q.bias = a.get(); }),
               "bias needs a bf16 d");
  expect_error(with([](GemmParams& q) { q.k = 0; }), "k must be positive");
}

}  // namespace
}  // namespace duet::test::ops
