// RoPE at forest positions, in place on q and k (rotate_half pairs i, i + D/2).
// One block per token: the token's cos/sin table is computed once in shared
// memory, then every head of q and k is rotated from it.
#include "backend/cuda/layers.hpp"
#include "backend/cuda/ops_device.cuh"
#include "backend/cuda/ops_internal.hpp"

namespace duet::backend::cuda {

namespace {

// angle = fp32(position) * inv_freq in fp32, as transformers' fp32 matmul of
// positions and inv_freq; sincosf is the accurate one (no fast-math).
template <int V>
__global__ void rope_kernel(bf16* q, bf16* k, int64_t q_stride, int64_t k_stride, const int32_t* positions,
                            const float* inv_freq, int64_t n_q_heads, int64_t n_kv_heads, int64_t head_dim,
                            float sin_sign) {
  extern __shared__ float table[];  // cos [half], then sin [half]
  const int64_t half = head_dim / 2, t = blockIdx.x;
  float* cos_t = table;
  float* sin_t = table + half;
  const float pos = static_cast<float>(positions[t]);
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    float s, c;
    sincosf(pos * inv_freq[i], &s, &c);
    cos_t[i] = c;
    sin_t[i] = sin_sign * s;
  }
  __syncthreads();
  const int64_t per_head = half / V, items = (n_q_heads + n_kv_heads) * per_head;
  for (int64_t idx = threadIdx.x; idx < items; idx += blockDim.x) {
    const int64_t head = idx / per_head, i = (idx % per_head) * V;
    bf16* x = head < n_q_heads ? q + t * q_stride + head * head_dim : k + t * k_stride + (head - n_q_heads) * head_dim;
    float a[V], b[V], out_a[V], out_b[V];
    dev::load<V>(x + i, a);
    dev::load<V>(x + half + i, b);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      out_a[j] = a[j] * cos_t[i + j] - b[j] * sin_t[i + j];
      out_b[j] = b[j] * cos_t[i + j] + a[j] * sin_t[i + j];
    }
    dev::store<V>(x + i, out_a);
    dev::store<V>(x + half + i, out_b);
  }
}

}  // namespace

void rope(const Rope& p, cudaStream_t stream) {
  detail::validate(p);
  if (p.n_tokens == 0 || p.n_q_heads + p.n_kv_heads == 0) return;
  const int64_t half = p.head_dim / 2;
  const bool q_vec = p.n_q_heads == 0 || (detail::aligned16(p.q) && p.q_row_stride % 8 == 0);
  const bool k_vec = p.n_kv_heads == 0 || (detail::aligned16(p.k) && p.k_row_stride % 8 == 0);
  const bool vec = half % 8 == 0 && q_vec && k_vec;
  const int64_t items = (p.n_q_heads + p.n_kv_heads) * (vec ? half / 8 : half);
  const unsigned threads = dev::threads_for(items, 256);
  const size_t smem = 2 * sizeof(float) * static_cast<size_t>(half);
  const float sign = p.inverse ? -1.0f : 1.0f;
  const unsigned grid = static_cast<unsigned>(p.n_tokens);
  if (vec)
    rope_kernel<8><<<grid, threads, smem, stream>>>(p.q, p.k, p.q_row_stride, p.k_row_stride, p.positions, p.inv_freq,
                                                     p.n_q_heads, p.n_kv_heads, p.head_dim, sign);
  else
    rope_kernel<1><<<grid, threads, smem, stream>>>(p.q, p.k, p.q_row_stride, p.k_row_stride, p.positions, p.inv_freq,
                                                     p.n_q_heads, p.n_kv_heads, p.head_dim, sign);
  check_launch("rope");
}

}  // namespace duet::backend::cuda
