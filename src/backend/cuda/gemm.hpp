#pragma once
// Matrix products through cuBLASLt, described row-major (as the engine thinks):
//   D[m, n] = alpha * op(A) op(B) + beta * C,   C = D (in place, beta != 0 accumulates)
// op(A) is A stored [m, k] (a_trans = false) or A stored [k, m] read transposed;
// op(B) is B stored [k, n] (b_trans = false) or B stored [n, k] read transposed.
// A and B are bf16; D is bf16 or fp32; accumulation is always fp32. An optional
// bf16 bias [n] is added to every row (cuBLASLt's bias epilogue, Qwen2's q/k/v).
//
// The engine's products, in these terms (weights W [out, in] as HF stores them):
//   forward          y[n_tok, out]  = x[n_tok, in] · Wᵀ          (b_trans = true)
//   input gradient   dx[n_tok, in]  = dy[n_tok, out] · W         (b_trans = false)
//   weight gradient  dW[out, in]   += dyᵀ · x                    (a_trans = true, fp32 D, beta 1)
//
// The algorithm for each distinct shape/type/transpose/bias key is chosen once
// and cached (no heuristic call in the steady state): cuBLASLt's heuristic's
// first; or the choice tune() made for the shape's bucket of m and k, the
// fastest of N timed candidates; or, where refine() found a faster one at the
// shape's own m and k, that (the engine tunes and refines at reserve, before
// its first step: docs/cuda-engine.md, "Matrix products").
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>
#include <string>

#include "backend/cuda/common.hpp"

namespace duet::backend::cuda {

enum class DType : uint8_t { BF16, F32 };

struct GemmParams {
  const bf16* a = nullptr;
  const bf16* b = nullptr;
  void* d = nullptr;
  DType d_type = DType::BF16;
  const bf16* bias = nullptr;  // [n] or null
  bool a_trans = false, b_trans = false;
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldd = 0;  // row strides in elements; 0 = tightly packed
  float alpha = 1.0f, beta = 0.0f;

  void validate() const;  // throws duet::Error naming the field
};

// The engine's three products of a linear layer y[n, out] = x[n, in] · Wᵀ (+ bias),
// W [out, in] as HF stores it, n tokens (the shapes listed above).
inline GemmParams linear_forward(const bf16* x, const bf16* w, const bf16* bias, bf16* y, int64_t n, int64_t in,
                                 int64_t out) {
  GemmParams p;
  p.a = x, p.b = w, p.d = y, p.d_type = DType::BF16, p.bias = bias;
  p.b_trans = true, p.m = n, p.n = out, p.k = in;
  return p;
}
inline GemmParams linear_input_grad(const bf16* dy, const bf16* w, void* dx, bool dx_f32, int64_t n, int64_t in,
                                    int64_t out) {
  GemmParams p;  // dx[n, in] = dy[n, out] · W[out, in]
  p.a = dy, p.b = w, p.d = dx, p.d_type = dx_f32 ? DType::F32 : DType::BF16;
  p.m = n, p.n = in, p.k = out;
  return p;
}
inline GemmParams linear_weight_grad(const bf16* dy, const bf16* x, float* dw, int64_t n, int64_t in, int64_t out) {
  GemmParams p;  // dW[out, in] += dyᵀ · x
  p.a = dy, p.b = x, p.d = dw, p.d_type = DType::F32, p.a_trans = true, p.beta = 1.0f;
  p.m = out, p.n = in, p.k = n;
  return p;
}

// A non-null stand-in for a bias in shapes given to Gemm::tune, which reads
// only shapes (whether there is a bias is part of one).
inline const bf16* const kShapeOnlyBias = reinterpret_cast<const bf16*>(uintptr_t{256});

// cuBLASLt's scratch: 32 MiB is what cuBLAS recommends on Hopper.
inline constexpr size_t kGemmWorkspaceBytes = size_t{32} << 20;

class Gemm {
 public:
  // workspace_bytes: cuBLASLt's scratch. buckets_per_octave: how finely tune()
  // divides token counts, 1 (buckets end at powers of two) or 2 (at powers of
  // two and 1.5 times them: a bucket's counts are within 1.5x of the one tuned).
  explicit Gemm(size_t workspace_bytes = kGemmWorkspaceBytes, int buckets_per_octave = 2);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  void run(const GemmParams& p, cudaStream_t stream);

  // For each shape's product kind (n, transposes, output type, bias) and
  // bucket of m and k (bucket_of): times `candidates` of the heuristic's
  // algorithms on the shape (its pointers are not read: scratch operands are
  // allocated for the call and freed after it) and keeps the fastest, unless
  // the heuristic's first is within 1% of it. Later runs of any shape of the
  // bucket use the choice where cuBLASLt accepts it. Buckets tuned before (or
  // given by use_algorithms) are skipped; plans made before are kept.
  // Synchronises `stream`.
  // Returns false, having tuned nothing, when the scratch does not fit in
  // the GPU's free memory (the heuristic's algorithms then serve).
  bool tune(const std::vector<GemmParams>& shapes, int candidates, cudaStream_t stream);
  // After tune(): for each shape (its own m and k, not a bucket's end), times
  // the bucket's choice, the next `keep` - 1 of the bucket's ranking and the
  // heuristic's first at this shape, and keeps the fastest for exactly this
  // m and k where it beats the bucket's choice by more than 1% (a bucket's
  // choice is not the best at every count in it). Skips shapes whose bucket
  // is untuned or came from use_algorithms (a resumed run computes with the
  // saved choices alone). Synchronises `stream`; false as tune().
  bool refine(const std::vector<GemmParams>& shapes, int keep, cudaStream_t stream);
  // The bucket a count falls in, named by its largest count (the one tune()
  // should be given), and every bucket up to and including max's.
  int64_t bucket_of(int64_t x) const;
  std::vector<int64_t> buckets_up_to(int64_t max) const;

  // The tuned choices as text, and back: a checkpoint keeps them so that a
  // resumed run computes with its first run's algorithms (bf16's last bits
  // depend on them). use_algorithms adds them to the tuned choices; it
  // ignores (returns false) a text written with another cuBLASLt or GPU.
  std::string algorithms() const;
  bool use_algorithms(const std::string& text);

  // How many exact shapes refine() gave a choice of their own.
  int64_t refined_shapes() const;

  // Runs since construction whose bucket had no tuned choice (the engine's
  // test that tuning at reserve covers every product a step makes).
  int64_t untuned_runs() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace duet::backend::cuda
