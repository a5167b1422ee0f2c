// RoPE (rotate_half convention) forward and backward, in place.
#include "backend/rope.hpp"
#include "backend/cpu/threading.hpp"

#include <cmath>
#include <vector>

namespace duet::backend::cpu {

namespace {

// Rotates every head of q and k of each token by sign * position * inv_freq.
template <typename T>
void rope_apply(const RopeParams<T>& p, double sign) {
  p.validate();
  for (int64_t t = 0; t < p.n_tokens; ++t)
    if (p.positions[t] < 0) fail("rope: positions[{}] = {} is negative", t, p.positions[t]);
  const int64_t half = p.head_dim / 2;
#pragma omp parallel if (parallel_worth(p.n_tokens * (p.n_q_heads + p.n_kv_heads) * p.head_dim))
  {
    std::vector<T> cos_t(half), sin_t(half);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < p.n_tokens; ++t) {
      // One cos/sin table per token, shared by all its heads. The product of
      // an int32 position and a float inv_freq is exact in double.
      for (int64_t i = 0; i < half; ++i) {
        double angle = static_cast<double>(p.positions[t]) * static_cast<double>(p.inv_freq[i]);
        if (p.fp32_angles) angle = static_cast<double>(static_cast<float>(angle));
        cos_t[i] = static_cast<T>(std::cos(angle));
        sin_t[i] = static_cast<T>(sign * std::sin(angle));
      }
      auto rotate = [&](T* row, int64_t n_heads) {
        for (int64_t h = 0; h < n_heads; ++h) {
          T* x = row + h * p.head_dim;
          for (int64_t i = 0; i < half; ++i) {
            const T a = x[i], b = x[i + half];
            x[i] = a * cos_t[i] - b * sin_t[i];
            x[i + half] = b * cos_t[i] + a * sin_t[i];
          }
        }
      };
      if (p.n_q_heads) rotate(p.q + t * p.q_row_stride, p.n_q_heads);
      if (p.n_kv_heads) rotate(p.k + t * p.k_row_stride, p.n_kv_heads);
    }
  }
}

}  // namespace

template <typename T>
void rope_forward(const RopeParams<T>& p) {
  rope_apply(p, 1.0);
}

template <typename T>
void rope_backward(const RopeParams<T>& p) {
  rope_apply(p, -1.0);
}

template void rope_forward<float>(const RopeParams<float>&);
template void rope_forward<double>(const RopeParams<double>&);
template void rope_backward<float>(const RopeParams<float>&);
template void rope_backward<double>(const RopeParams<double>&);

}  // namespace duet::backend::cpu
