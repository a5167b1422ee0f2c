#pragma once
// RMSNorm as Hugging Face Llama computes it: y = w * (x * rstd),
// rstd = 1 / sqrt(mean(x^2) + eps), per row; the weight multiplies after the
// normalisation (the order matters for rounding). rstd is saved per row for
// the backward:
//   xhat = x * rstd, g = dy * w
//   dx = rstd * (g - xhat * mean(g * xhat)),  dw += sum over rows of dy * xhat.
#include <cstdint>

#include "backend/common.hpp"

namespace duet::backend {

template <typename T>
struct RmsNormParams {
  const T* x = nullptr;       // [n_rows, dim]
  const T* weight = nullptr;  // [dim]
  T* y = nullptr;             // [n_rows, dim], written
  T* rstd = nullptr;          // [n_rows], written (saved for the backward)
  int64_t n_rows = 0;
  int64_t dim = 0;
  double eps = 1e-6;  // rounded to T before use, as torch does with a Python scalar

  void validate() const {
    using namespace detail;
    const char* op = "rmsnorm";
    require_non_negative(op, "n_rows", n_rows);
    require_positive(op, "dim", dim);
    require_data(op, "x", x, n_rows * dim);
    require_data(op, "weight", weight, dim);
    require_data(op, "y", y, n_rows * dim);
    require_data(op, "rstd", rstd, n_rows);
    if (!(eps >= 0)) fail("rmsnorm: eps must be >= 0 (got {})", eps);
  }
};

template <typename T>
struct RmsNormBackwardParams {
  const T* x = nullptr;       // [n_rows, dim], the forward's input
  const T* weight = nullptr;  // [dim]
  const T* rstd = nullptr;    // [n_rows], from the forward
  const T* dy = nullptr;      // [n_rows, dim]
  T* dx = nullptr;            // [n_rows, dim], written
  T* d_weight = nullptr;      // [dim], accumulated (+=); null: frozen weight
  int64_t n_rows = 0;
  int64_t dim = 0;

  void validate() const {
    using namespace detail;
    const char* op = "rmsnorm backward";
    require_non_negative(op, "n_rows", n_rows);
    require_positive(op, "dim", dim);
    require_data(op, "x", x, n_rows * dim);
    require_data(op, "weight", weight, dim);
    require_data(op, "rstd", rstd, n_rows);
    require_data(op, "dy", dy, n_rows * dim);
    require_data(op, "dx", dx, n_rows * dim);
  }
};

namespace cpu {
template <typename T>
void rmsnorm_forward(const RmsNormParams<T>& p);
template <typename T>
void rmsnorm_backward(const RmsNormBackwardParams<T>& p);
}  // namespace cpu

}  // namespace duet::backend
