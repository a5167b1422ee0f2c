// AdamW step and the global gradient norm.
#include "backend/adamw.hpp"
#include "backend/cpu/threading.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace duet::backend::cpu {

template <typename T>
void adamw_step(const AdamWParams<T>& p) {
  p.validate();
  // Scalars in double, rounded once to T (torch does the same with its Python
  // float hyper-parameters). The update follows torch's single-tensor AdamW:
  // m.lerp_(g, 1 - b1); v = b2 v + (1 - b2) g^2;
  // p -= step_size * m / (sqrt(v) / sqrt(bc2) + eps).
  const double bc1 = 1.0 - std::pow(p.beta1, static_cast<double>(p.step));
  const double bc2 = 1.0 - std::pow(p.beta2, static_cast<double>(p.step));
  const T step_size = static_cast<T>(p.lr / bc1);
  const T bc2_sqrt = static_cast<T>(std::sqrt(bc2));
  const T decay = static_cast<T>(p.decay ? 1.0 - p.lr * p.weight_decay : 1.0);
  const T one_minus_b1 = static_cast<T>(1.0 - p.beta1);
  const T b2 = static_cast<T>(p.beta2), one_minus_b2 = static_cast<T>(1.0 - p.beta2);
  const T eps = static_cast<T>(p.eps), scale = static_cast<T>(p.grad_scale);
#pragma omp parallel for schedule(static) if (parallel_worth(p.n))
  for (int64_t i = 0; i < p.n; ++i) {
    const T g = p.grad[i] * scale;
    T w = p.param[i] * decay;
    const T m = p.m[i] + one_minus_b1 * (g - p.m[i]);
    const T v = b2 * p.v[i] + one_minus_b2 * g * g;
    w -= step_size * m / (std::sqrt(v) / bc2_sqrt + eps);
    p.m[i] = m;
    p.v[i] = v;
    p.param[i] = w;
  }
}

template <typename T>
double global_grad_norm(std::span<const GradView<T>> grads) {
  // Fixed-size chunks (not one per thread) so the partial sums, and their
  // order, are the same for any thread count.
  constexpr int64_t kChunk = int64_t{1} << 15;
  struct Piece {
    const T* data;
    int64_t size;
  };
  std::vector<Piece> pieces;
  for (size_t i = 0; i < grads.size(); ++i) {
    const GradView<T>& g = grads[i];
    if (g.size < 0) fail("global_grad_norm: grads[{}].size is negative ({})", i, g.size);
    detail::require_data("global_grad_norm", "grads[].data", g.data, g.size);
    for (int64_t b = 0; b < g.size; b += kChunk)
      pieces.push_back({g.data + b, std::min(kChunk, g.size - b)});
  }
  std::vector<double> partial(pieces.size());
  const int64_t n_pieces = static_cast<int64_t>(pieces.size());
#pragma omp parallel for schedule(static) if (n_pieces > 1)
  for (int64_t k = 0; k < n_pieces; ++k) {
    double sum = 0;
    for (int64_t i = 0; i < pieces[k].size; ++i) {
      const double x = pieces[k].data[i];
      sum += x * x;
    }
    partial[k] = sum;
  }
  double total = 0;
  for (double s : partial) total += s;
  return std::sqrt(total);
}

template void adamw_step<float>(const AdamWParams<float>&);
template void adamw_step<double>(const AdamWParams<double>&);
template double global_grad_norm<float>(std::span<const GradView<float>>);
template double global_grad_norm<double>(std::span<const GradView<double>>);

}  // namespace duet::backend::cpu
