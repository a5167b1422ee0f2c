#pragma once
// SwiGLU, the Llama MLP's activation: h = silu(gate) * up, silu(g) = g sigmoid(g).
// Backward: dgate = dh * up * s * (1 + g (1 - s)) with s = sigmoid(g),
//           dup = dh * silu(g).
#include <cstdint>

#include "backend/common.hpp"

namespace duet::backend {

template <typename T>
struct SwiGluParams {
  const T* gate = nullptr;  // [n_rows, dim]
  const T* up = nullptr;    // [n_rows, dim]
  T* out = nullptr;         // [n_rows, dim], written
  int64_t n_rows = 0;
  int64_t dim = 0;

  void validate() const {
    using namespace detail;
    const char* op = "swiglu";
    require_non_negative(op, "n_rows", n_rows);
    require_positive(op, "dim", dim);
    require_data(op, "gate", gate, n_rows * dim);
    require_data(op, "up", up, n_rows * dim);
    require_data(op, "out", out, n_rows * dim);
  }
};

template <typename T>
struct SwiGluBackwardParams {
  const T* gate = nullptr;   // [n_rows, dim], the forward's inputs
  const T* up = nullptr;
  const T* d_out = nullptr;  // [n_rows, dim]
  T* d_gate = nullptr;       // [n_rows, dim], written
  T* d_up = nullptr;         // [n_rows, dim], written
  int64_t n_rows = 0;
  int64_t dim = 0;

  void validate() const {
    using namespace detail;
    const char* op = "swiglu backward";
    require_non_negative(op, "n_rows", n_rows);
    require_positive(op, "dim", dim);
    const int64_t n = n_rows * dim;
    require_data(op, "gate", gate, n);
    require_data(op, "up", up, n);
    require_data(op, "d_out", d_out, n);
    require_data(op, "d_gate", d_gate, n);
    require_data(op, "d_up", d_up, n);
  }
};

namespace cpu {
template <typename T>
void swiglu_forward(const SwiGluParams<T>& p);
template <typename T>
void swiglu_backward(const SwiGluBackwardParams<T>& p);
}  // namespace cpu

}  // namespace duet::backend
