// RMSNorm forward and backward (formulas in backend/rmsnorm.hpp).
#include "backend/rmsnorm.hpp"
#include "backend/cpu/threading.hpp"

#include <algorithm>
#include <cmath>

namespace duet::backend::cpu {

template <typename T>
void rmsnorm_forward(const RmsNormParams<T>& p) {
  p.validate();
  const int64_t dim = p.dim;
  const T eps = static_cast<T>(p.eps);
#pragma omp parallel for schedule(static) if (parallel_worth(p.n_rows * dim))
  for (int64_t r = 0; r < p.n_rows; ++r) {
    const T* x = p.x + r * dim;
    T* y = p.y + r * dim;
    T sum_sq = 0;
    for (int64_t c = 0; c < dim; ++c) sum_sq += x[c] * x[c];
    const T rstd = T(1) / std::sqrt(sum_sq / static_cast<T>(dim) + eps);
    for (int64_t c = 0; c < dim; ++c) y[c] = p.weight[c] * (x[c] * rstd);
    p.rstd[r] = rstd;
  }
}

template <typename T>
void rmsnorm_backward(const RmsNormBackwardParams<T>& p) {
  p.validate();
  const int64_t dim = p.dim;
  // dx: rows are independent.
#pragma omp parallel for schedule(static) if (parallel_worth(p.n_rows * dim))
  for (int64_t r = 0; r < p.n_rows; ++r) {
    const T* x = p.x + r * dim;
    const T* dy = p.dy + r * dim;
    T* dx = p.dx + r * dim;
    const T rstd = p.rstd[r];
    // mean over the row of (dy * w) * xhat
    T dot = 0;
    for (int64_t c = 0; c < dim; ++c) dot += dy[c] * p.weight[c] * (x[c] * rstd);
    const T mean = dot / static_cast<T>(dim);
    for (int64_t c = 0; c < dim; ++c)
      dx[c] = rstd * (dy[c] * p.weight[c] - (x[c] * rstd) * mean);
  }
  if (!p.d_weight) return;
  // dw sums over rows: each thread owns a block of columns and walks the rows
  // in order, so there is no race and the sum order does not depend on threads.
  constexpr int64_t kBlock = 64;
  const int64_t n_blocks = (dim + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (parallel_worth(p.n_rows * dim))
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int64_t c0 = b * kBlock, c1 = std::min(dim, c0 + kBlock);
    for (int64_t r = 0; r < p.n_rows; ++r) {
      const T* x = p.x + r * dim;
      const T* dy = p.dy + r * dim;
      const T rstd = p.rstd[r];
      for (int64_t c = c0; c < c1; ++c) p.d_weight[c] += dy[c] * (x[c] * rstd);
    }
  }
}

template void rmsnorm_forward<float>(const RmsNormParams<float>&);
template void rmsnorm_forward<double>(const RmsNormParams<double>&);
template void rmsnorm_backward<float>(const RmsNormBackwardParams<float>&);
template void rmsnorm_backward<double>(const RmsNormBackwardParams<double>&);

}  // namespace duet::backend::cpu
