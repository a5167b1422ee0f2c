#pragma once
// Rotary position embedding, Hugging Face's rotate_half convention: within a
// head of size D, element i pairs with i + D/2 and the pair rotates by
// angle = position * inv_freq[i]:
//   out[i]       = x[i] cos - x[i + D/2] sin
//   out[i + D/2] = x[i + D/2] cos + x[i] sin
// (= x*cos + rotate_half(x)*sin). Applied in place to q [T, Hq, D] and
// k [T, Hkv, D] at each token's own position (the forest's `position`, not
// 0..T-1). The backward is the same rotation by -angle (a rotation's
// transpose), applied in place to dq and dk.
//
// Angles and cos/sin are computed in double and rounded once to T. transformers
// instead rounds the angle to fp32 first (fp32 matmul of inv_freq and
// positions), which at position ~8k moves it by up to ~5e-4 rad; set
// fp32_angles to reproduce that exactly (then cos/sin of the rounded angle are
// still computed in double).
#include <cstdint>

#include "backend/common.hpp"

namespace duet::backend {

template <typename T>
struct RopeParams {
  T* q = nullptr;  // [n_tokens, q_row_stride], heads [n_q_heads, head_dim] at the start of a row
  T* k = nullptr;  // [n_tokens, k_row_stride], heads [n_kv_heads, head_dim]
  int64_t n_tokens = 0;
  int64_t n_q_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;      // even
  int64_t q_row_stride = 0;  // elements between tokens; >= n_q_heads * head_dim
  int64_t k_row_stride = 0;  // >= n_kv_heads * head_dim
  const int32_t* positions = nullptr;  // [n_tokens], >= 0
  const float* inv_freq = nullptr;     // [head_dim / 2] (model::rope_inverse_frequencies)
  bool fp32_angles = false;            // round position*inv_freq to fp32 first, as transformers

  // Strides of tightly packed q and k.
  void set_packed_strides() {
    q_row_stride = n_q_heads * head_dim;
    k_row_stride = n_kv_heads * head_dim;
  }

  void validate() const {
    using namespace detail;
    const char* op = "rope";
    require_non_negative(op, "n_tokens", n_tokens);
    require_non_negative(op, "n_q_heads", n_q_heads);
    require_non_negative(op, "n_kv_heads", n_kv_heads);
    require_positive(op, "head_dim", head_dim);
    if (head_dim % 2 != 0) fail("rope: head_dim ({}) must be even", head_dim);
    require_stride(op, "q_row_stride", q_row_stride, n_q_heads * head_dim);
    require_stride(op, "k_row_stride", k_row_stride, n_kv_heads * head_dim);
    require_data(op, "q", q, n_tokens * n_q_heads);
    require_data(op, "k", k, n_tokens * n_kv_heads);
    require_data(op, "positions", positions, n_tokens);
    require_data(op, "inv_freq", inv_freq, head_dim / 2);
  }
};

namespace cpu {
// Rotates q and k in place by +angle. Also checks positions >= 0.
template <typename T>
void rope_forward(const RopeParams<T>& p);
// The backward: p.q and p.k hold dq and dk (gradients with respect to the
// rotated q, k); rotates them in place by -angle.
template <typename T>
void rope_backward(const RopeParams<T>& p);
}  // namespace cpu

}  // namespace duet::backend
