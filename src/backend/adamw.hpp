#pragma once
// AdamW (Loshchilov & Hutter; torch.optim.AdamW), one step on one tensor, with
// decoupled weight decay and bias correction:
//   p -= lr * weight_decay * p            (only when decay is on)
//   m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// g is grad * grad_scale, so clipping by the global norm (below) needs no
// separate pass over the gradients.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>

#include "backend/common.hpp"

namespace duet::backend {

template <typename T>
struct AdamWParams {
  T* param = nullptr;       // [n], updated in place
  const T* grad = nullptr;  // [n]
  T* m = nullptr;           // [n], first moment, updated (zero before step 1)
  T* v = nullptr;           // [n], second moment, updated (zero before step 1)
  int64_t n = 0;
  double lr = 0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
  bool decay = true;        // per tensor: norms and biases usually off
  int64_t step = 0;         // 1 for the first step
  double grad_scale = 1.0;  // e.g. clip_coefficient(global_grad_norm(...), max_norm)

  void validate() const {
    using namespace detail;
    const char* op = "adamw";
    require_non_negative(op, "n", n);
    require_data(op, "param", param, n);
    require_data(op, "grad", grad, n);
    require_data(op, "m", m, n);
    require_data(op, "v", v, n);
    require_positive(op, "step", step);
    if (!(lr >= 0)) fail("adamw: lr must be >= 0 (got {})", lr);
    if (!(beta1 >= 0 && beta1 < 1)) fail("adamw: beta1 must be in [0, 1) (got {})", beta1);
    if (!(beta2 >= 0 && beta2 < 1)) fail("adamw: beta2 must be in [0, 1) (got {})", beta2);
    if (!(eps > 0)) fail("adamw: eps must be positive (got {})", eps);
    if (!(weight_decay >= 0)) fail("adamw: weight_decay must be >= 0 (got {})", weight_decay);
    if (!std::isfinite(grad_scale)) fail("adamw: grad_scale must be finite (got {})", grad_scale);
  }
};

// One gradient tensor for the global norm.
template <typename T>
struct GradView {
  const T* data = nullptr;
  int64_t size = 0;
};

// torch.nn.utils.clip_grad_norm_'s factor: min(1, max_norm / (norm + 1e-6)).
inline double clip_coefficient(double total_norm, double max_norm) {
  if (!(max_norm > 0)) fail("clip_coefficient: max_norm must be positive (got {})", max_norm);
  return std::min(1.0, max_norm / (total_norm + 1e-6));
}

namespace cpu {
template <typename T>
void adamw_step(const AdamWParams<T>& p);
// sqrt of the sum of squares over all tensors, accumulated in double in a
// fixed order (same result for any thread count). Non-finite gradients give a
// non-finite norm.
template <typename T>
double global_grad_norm(std::span<const GradView<T>> grads);
}  // namespace cpu

}  // namespace duet::backend
