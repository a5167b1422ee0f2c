#pragma once
// Linear layer with Hugging Face's weight layout W [out, in]: y = x W^T + b.
// Backward: dx = dy W, dW += dy^T x, db += sum over rows of dy.
// The CPU kernel calls cblas ?gemm (OpenBLAS); the bias sum is its own loop.
#include <cstdint>

#include "backend/common.hpp"

namespace duet::backend {

template <typename T>
struct LinearParams {
  const T* x = nullptr;       // [n_rows, in_features]
  const T* weight = nullptr;  // [out_features, in_features]
  const T* bias = nullptr;    // [out_features] or null
  T* y = nullptr;             // [n_rows, out_features], written
  int64_t n_rows = 0;
  int64_t in_features = 0;
  int64_t out_features = 0;

  void validate() const {
    using namespace detail;
    const char* op = "linear";
    require_non_negative(op, "n_rows", n_rows);
    require_positive(op, "in_features", in_features);
    require_positive(op, "out_features", out_features);
    require_data(op, "x", x, n_rows * in_features);
    require_data(op, "weight", weight, out_features * in_features);
    require_data(op, "y", y, n_rows * out_features);
  }
};

template <typename T>
struct LinearBackwardParams {
  const T* x = nullptr;       // [n_rows, in_features], the forward's input
  const T* weight = nullptr;  // [out_features, in_features]
  const T* dy = nullptr;      // [n_rows, out_features]
  T* dx = nullptr;            // [n_rows, in_features], written; null: not needed
  T* d_weight = nullptr;      // [out_features, in_features], accumulated; null: frozen
  T* d_bias = nullptr;        // [out_features], accumulated; null: no bias or frozen
  int64_t n_rows = 0;
  int64_t in_features = 0;
  int64_t out_features = 0;

  void validate() const {
    using namespace detail;
    const char* op = "linear backward";
    require_non_negative(op, "n_rows", n_rows);
    require_positive(op, "in_features", in_features);
    require_positive(op, "out_features", out_features);
    require_data(op, "dy", dy, n_rows * out_features);
    if (dx) require_data(op, "weight", weight, out_features * in_features);
    if (d_weight) require_data(op, "x", x, n_rows * in_features);
  }
};

namespace cpu {
template <typename T>
void linear_forward(const LinearParams<T>& p);
template <typename T>
void linear_backward(const LinearBackwardParams<T>& p);
}  // namespace cpu

}  // namespace duet::backend
