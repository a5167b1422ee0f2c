// The global gradient norm (double partial sums over fixed chunks, then one
// block summing the partials in a fixed order) and one fused AdamW pass over
// the flat parameter buffer, reading the clip coefficient from the device norm.
#include <cmath>

#include "backend/cuda/adamw.hpp"
#include "backend/cuda/ops_device.cuh"
#include "backend/cuda/ops_internal.hpp"

namespace duet::backend::cuda {

namespace {

constexpr int64_t kNormChunk = int64_t{1} << 16;  // gradients per partial sum
constexpr int kThreads = 256;

// Block b: Σ g² over [b * kNormChunk, ...) in double.
template <int V>
__global__ void norm_partials_kernel(const float* grads, int64_t n, double* partials) {
  __shared__ double scratch[32];
  const int64_t begin = blockIdx.x * kNormChunk, end = min(n, begin + kNormChunk);
  double sum = 0;
  for (int64_t i = begin + threadIdx.x * V; i < end; i += int64_t{blockDim.x} * V) {
    if (i + V <= end) {
      float g[V];
      dev::load<V>(grads + i, g);
#pragma unroll
      for (int j = 0; j < V; ++j) sum += static_cast<double>(g[j]) * g[j];
    } else {
      for (int64_t j = i; j < end; ++j) sum += static_cast<double>(grads[j]) * grads[j];
    }
  }
  sum = dev::block_reduce(sum, dev::Sum{}, 0.0, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

__global__ void norm_finish_kernel(const double* partials, int64_t n_partials, double* norm, bool root) {
  __shared__ double scratch[32];
  double sum = 0;
  for (int64_t i = threadIdx.x; i < n_partials; i += blockDim.x) sum += partials[i];
  sum = dev::block_reduce(sum, dev::Sum{}, 0.0, scratch);
  if (threadIdx.x == 0) *norm = root ? sqrt(sum) : sum;
}

__global__ void sqrt_kernel(double* value) { *value = sqrt(*value); }

// The step's scalars, computed on the host in double and rounded once to fp32
// (as backend::cpu::adamw_step does for T = float).
struct Scalars {
  float step_size, bc2_sqrt, decay, one_minus_b1, b2, one_minus_b2, eps;
  double max_norm;
};

// One thread per V consecutive parameters; the slot (for decay) found by a
// binary search over slot_offsets for the first, then walked forward.
template <int V>
__global__ void adamw_kernel(float* master, bf16* weights, const float* grads, float* m_buf, float* v_buf, int64_t n,
                             const int64_t* slot_offsets, const uint8_t* slot_decay, int64_t n_slots,
                             const double* grad_norm, Scalars s) {
  const int64_t i0 = (int64_t{blockIdx.x} * blockDim.x + threadIdx.x) * V;
  if (i0 >= n) return;
  float scale = 1.0f;
  if (s.max_norm > 0) {  // torch's clip_grad_norm_: min(1, max_norm / (norm + 1e-6))
    const double c = s.max_norm / (*grad_norm + 1e-6);
    scale = static_cast<float>(c < 1.0 ? c : 1.0);
  }
  int64_t lo = 0, hi = n_slots - 1;  // the last slot whose offset is <= i0
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (slot_offsets[mid] <= i0)
      lo = mid;
    else
      hi = mid - 1;
  }
  int64_t slot = lo;
  const int count = i0 + V <= n ? V : static_cast<int>(n - i0);
  float w[V], g[V], m[V], v[V];
  if (count == V) {
    dev::load<V>(master + i0, w);
    dev::load<V>(grads + i0, g);
    dev::load<V>(m_buf + i0, m);
    dev::load<V>(v_buf + i0, v);
  } else {
    for (int j = 0; j < count; ++j) w[j] = master[i0 + j], g[j] = grads[i0 + j], m[j] = m_buf[i0 + j], v[j] = v_buf[i0 + j];
  }
#pragma unroll
  for (int j = 0; j < V; ++j) {
    if (j >= count) break;
    while (slot + 1 < n_slots && slot_offsets[slot + 1] <= i0 + j) ++slot;
    const float gj = g[j] * scale;
    float wj = w[j] * (slot_decay[slot] ? s.decay : 1.0f);
    m[j] = m[j] + s.one_minus_b1 * (gj - m[j]);
    v[j] = s.b2 * v[j] + s.one_minus_b2 * gj * gj;
    wj -= s.step_size * m[j] / (sqrtf(v[j]) / s.bc2_sqrt + s.eps);
    w[j] = wj;
  }
  if (count == V) {
    dev::store<V>(master + i0, w);
    dev::store<V>(m_buf + i0, m);
    dev::store<V>(v_buf + i0, v);
  } else {
    for (int j = 0; j < count; ++j) master[i0 + j] = w[j], m_buf[i0 + j] = m[j], v_buf[i0 + j] = v[j];
  }
  if (weights)
    for (int j = 0; j < count; ++j) weights[i0 + j] = __float2bfloat16_rn(w[j]);
}

}  // namespace

int64_t grad_norm_partials(int64_t n) { return n > 0 ? (n + kNormChunk - 1) / kNormChunk : 1; }

namespace {

void sum_of_squares(const float* grads, int64_t n, double* partials, double* out, bool root, cudaStream_t stream) {
  detail::validate_grad_norm(grads, n, partials, out);
  const int64_t n_partials = grad_norm_partials(n);
  if (n == 0) {
    norm_finish_kernel<<<1, 32, 0, stream>>>(partials, 0, out, root);  // writes 0
  } else {
    if (detail::aligned16(grads))
      norm_partials_kernel<4><<<static_cast<unsigned>(n_partials), kThreads, 0, stream>>>(grads, n, partials);
    else
      norm_partials_kernel<1><<<static_cast<unsigned>(n_partials), kThreads, 0, stream>>>(grads, n, partials);
    check_launch("global_grad_norm");
    norm_finish_kernel<<<1, 1024, 0, stream>>>(partials, n_partials, out, root);
  }
  check_launch("global_grad_norm");
}

}  // namespace

void global_grad_norm(const float* grads, int64_t n, double* partials, double* norm, cudaStream_t stream) {
  sum_of_squares(grads, n, partials, norm, true, stream);
}

void grad_sum_squares(const float* grads, int64_t n, double* partials, double* sum, cudaStream_t stream) {
  sum_of_squares(grads, n, partials, sum, false, stream);
}

void norm_from_sum_squares(double* value, cudaStream_t stream) {
  sqrt_kernel<<<1, 1, 0, stream>>>(value);
  check_launch("norm_from_sum_squares");
}

void adamw_step(const AdamWStep& p, cudaStream_t stream) {
  detail::validate(p);
  if (p.n == 0) return;
  const double t = static_cast<double>(p.step);
  const double bc1 = 1.0 - std::pow(p.beta1, t), bc2 = 1.0 - std::pow(p.beta2, t);
  Scalars s;
  s.step_size = static_cast<float>(p.lr / bc1);
  s.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  s.decay = static_cast<float>(1.0 - p.lr * p.weight_decay);
  s.one_minus_b1 = static_cast<float>(1.0 - p.beta1);
  s.b2 = static_cast<float>(p.beta2);
  s.one_minus_b2 = static_cast<float>(1.0 - p.beta2);
  s.eps = static_cast<float>(p.eps);
  s.max_norm = p.max_norm;
  const bool vec = detail::aligned16(p.master) && detail::aligned16(p.grads) && detail::aligned16(p.m) &&
                   detail::aligned16(p.v);
  if (vec)
    adamw_kernel<4><<<grid_for((p.n + 3) / 4, kThreads), kThreads, 0, stream>>>(
        p.master, p.weights, p.grads, p.m, p.v, p.n, p.slot_offsets, p.slot_decay, p.n_slots, p.grad_norm, s);
  else
    adamw_kernel<1><<<grid_for(p.n, kThreads), kThreads, 0, stream>>>(p.master, p.weights, p.grads, p.m, p.v, p.n,
                                                                      p.slot_offsets, p.slot_decay, p.n_slots,
                                                                      p.grad_norm, s);
  check_launch("adamw");
}

}  // namespace duet::backend::cuda
