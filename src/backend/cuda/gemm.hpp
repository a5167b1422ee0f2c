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
// by cuBLASLt's heuristic and cached (no heuristic call in the steady state);
// or, with autotuning (set_autotune, or DUET_GEMM_AUTOTUNE=N for the engine),
// the fastest of N timed candidates, once per power-of-two bucket of m and k.
#include <cstddef>
#include <cstdint>
#include <memory>

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

// cuBLASLt's scratch: 32 MiB is what cuBLAS recommends on Hopper.
inline constexpr size_t kGemmWorkspaceBytes = size_t{32} << 20;

class Gemm {
 public:
  // workspace_bytes: cuBLASLt's scratch.
  explicit Gemm(size_t workspace_bytes = kGemmWorkspaceBytes);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  void run(const GemmParams& p, cudaStream_t stream);

  // candidates > 1: on the first use of a product kind in a power-of-two
  // bucket of m and k, time that many of the heuristic's algorithms on the
  // product's operands (into a scratch output, allocated for that moment) and
  // keep the fastest, instead of the heuristic's first; later shapes of the
  // bucket reuse it where cuBLASLt accepts it. Set before the first run of any
  // shape it should apply to; the environment's DUET_GEMM_AUTOTUNE sets it at
  // construction.
  void set_autotune(int candidates);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace duet::backend::cuda
