// Linear forward and backward through cblas gemm (W stored [out, in]).
#include "backend/linear.hpp"
#include "backend/cpu/threading.hpp"

#include <algorithm>

#include "backend/cpu/blas.hpp"

namespace duet::backend::cpu {

template <typename T>
void linear_forward(const LinearParams<T>& p) {
  p.validate();
  const int64_t n = p.n_rows, in = p.in_features, out = p.out_features;
  if (n == 0) return;
  // y = x W^T (+ b): start from the bias broadcast and let gemm add (beta 1).
  T beta = 0;
  if (p.bias) {
#pragma omp parallel for schedule(static) if (parallel_worth(n * out))
    for (int64_t r = 0; r < n; ++r) std::copy(p.bias, p.bias + out, p.y + r * out);
    beta = 1;
  }
  blas::gemm(false, true, n, out, in, T(1), p.x, in, p.weight, in, beta, p.y, out);
}

template <typename T>
void linear_backward(const LinearBackwardParams<T>& p) {
  p.validate();
  const int64_t n = p.n_rows, in = p.in_features, out = p.out_features;
  if (n == 0) return;
  // dx [n, in] = dy [n, out] W [out, in]
  if (p.dx) blas::gemm(false, false, n, in, out, T(1), p.dy, out, p.weight, in, T(0), p.dx, in);
  // dW [out, in] += dy^T [out, n] x [n, in]
  if (p.d_weight)
    blas::gemm(true, false, out, in, n, T(1), p.dy, out, p.x, in, T(1), p.d_weight, in);
  if (p.d_bias) {
    // Column blocks, rows in order: race-free and thread-count independent.
    constexpr int64_t kBlock = 64;
    const int64_t n_blocks = (out + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (parallel_worth(n * out * in / 64))
    for (int64_t b = 0; b < n_blocks; ++b) {
      const int64_t c0 = b * kBlock, c1 = std::min(out, c0 + kBlock);
      for (int64_t r = 0; r < n; ++r)
        for (int64_t c = c0; c < c1; ++c) p.d_bias[c] += p.dy[r * out + c];
    }
  }
}

template void linear_forward<float>(const LinearParams<float>&);
template void linear_forward<double>(const LinearParams<double>&);
template void linear_backward<float>(const LinearBackwardParams<float>&);
template void linear_backward<double>(const LinearBackwardParams<double>&);

}  // namespace duet::backend::cpu
