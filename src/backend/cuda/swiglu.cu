// SwiGLU on the fused gate|up product, element-wise in fp32 with one bf16
// rounding per output (silu as torch: g / (1 + exp(-g))).
#include "backend/cuda/layers.hpp"
#include "backend/cuda/ops_device.cuh"
#include "backend/cuda/ops_internal.hpp"

namespace duet::backend::cuda {

namespace {

// One thread per V consecutive columns of a row; d_out == nullptr is the forward.
template <int V, bool kBackward>
__global__ void swiglu_kernel(const bf16* gate_up, const bf16* d_out, bf16* out, int64_t n_rows, int64_t dim) {
  const int64_t per_row = dim / V;
  const int64_t idx = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (idx >= n_rows * per_row) return;
  const int64_t r = idx / per_row, c = (idx % per_row) * V;
  const bf16* gate = gate_up + r * 2 * dim + c;
  float g[V], u[V];
  dev::load<V>(gate, g);
  dev::load<V>(gate + dim, u);
  if constexpr (!kBackward) {
    float h[V];
#pragma unroll
    for (int j = 0; j < V; ++j) h[j] = g[j] / (1.0f + expf(-g[j])) * u[j];
    dev::store<V>(out + r * dim + c, h);
  } else {
    float dh[V], dg[V], du[V];
    dev::load<V>(d_out + r * dim + c, dh);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const float s = 1.0f / (1.0f + expf(-g[j]));
      du[j] = dh[j] * (g[j] * s);
      dg[j] = dh[j] * u[j] * s * (1.0f + g[j] * (1.0f - s));
    }
    bf16* d_gate = out + r * 2 * dim + c;
    dev::store<V>(d_gate, dg);
    dev::store<V>(d_gate + dim, du);
  }
}

template <bool kBackward>
void launch(const bf16* gate_up, const bf16* d_out, bf16* out, int64_t n_rows, int64_t dim, cudaStream_t stream,
            const char* op) {
  if (n_rows == 0) return;
  constexpr int kThreads = 256;
  const bool vec = dim % 8 == 0 && detail::aligned16(gate_up) && detail::aligned16(out) &&
                   (!kBackward || detail::aligned16(d_out));
  if (vec)
    swiglu_kernel<8, kBackward><<<grid_for(n_rows * dim / 8, kThreads), kThreads, 0, stream>>>(gate_up, d_out, out,
                                                                                              n_rows, dim);
  else
    swiglu_kernel<1, kBackward><<<grid_for(n_rows * dim, kThreads), kThreads, 0, stream>>>(gate_up, d_out, out, n_rows,
                                                                                          dim);
  check_launch(op);
}

}  // namespace

void swiglu_forward(const SwiGluForward& p, cudaStream_t stream) {
  detail::validate(p);
  launch<false>(p.gate_up, nullptr, p.out, p.n_rows, p.dim, stream, "swiglu");
}

void swiglu_backward(const SwiGluBackward& p, cudaStream_t stream) {
  detail::validate(p);
  launch<true>(p.gate_up, p.d_out, p.d_gate_up, p.n_rows, p.dim, stream, "swiglu backward");
}

}  // namespace duet::backend::cuda
