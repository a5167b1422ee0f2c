// SwiGLU forward and backward, element-wise.
#include "backend/swiglu.hpp"
#include "backend/cpu/threading.hpp"

#include <cmath>

namespace duet::backend::cpu {

namespace {
template <typename T>
T sigmoid(T g) {
  // exp(-g) overflows to inf for very negative g, giving exactly 0: fine.
  return T(1) / (T(1) + std::exp(-g));
}
}  // namespace

template <typename T>
void swiglu_forward(const SwiGluParams<T>& p) {
  p.validate();
  const int64_t n = p.n_rows * p.dim;
#pragma omp parallel for schedule(static) if (parallel_worth(n))
  for (int64_t i = 0; i < n; ++i) {
    // silu as torch computes it, x / (1 + exp(-x)), then times up (HF order).
    const T g = p.gate[i];
    p.out[i] = g / (T(1) + std::exp(-g)) * p.up[i];
  }
}

template <typename T>
void swiglu_backward(const SwiGluBackwardParams<T>& p) {
  p.validate();
  const int64_t n = p.n_rows * p.dim;
#pragma omp parallel for schedule(static) if (parallel_worth(n))
  for (int64_t i = 0; i < n; ++i) {
    const T g = p.gate[i], s = sigmoid(g), dh = p.d_out[i];
    p.d_up[i] = dh * (g * s);
    p.d_gate[i] = dh * p.up[i] * s * (T(1) + g * (T(1) - s));
  }
}

template void swiglu_forward<float>(const SwiGluParams<float>&);
template void swiglu_forward<double>(const SwiGluParams<double>&);
template void swiglu_backward<float>(const SwiGluBackwardParams<float>&);
template void swiglu_backward<double>(const SwiGluBackwardParams<double>&);

}  // namespace duet::backend::cpu
