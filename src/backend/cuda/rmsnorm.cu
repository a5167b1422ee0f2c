// Residual add fused with RMSNorm (forward) and the RMSNorm backward, one
// block per row (forward) or per fixed chunk of rows (backward, which also
// sums the weight gradient's partials of its rows in shared memory).
#include "backend/cuda/layers.hpp"
#include "backend/cuda/ops_device.cuh"
#include "backend/cuda/ops_internal.hpp"

namespace duet::backend::cuda {

namespace {

// As transformers: h = bf16(residual + branch); rstd = 1/sqrt(mean(h²) + eps)
// in fp32; y = bf16(w * bf16(h * rstd)). Each thread handles the same vectors
// of V columns in both passes, so it re-reads what it wrote itself.
template <int V>
__global__ void add_rmsnorm_kernel(const bf16* residual, const bf16* branch, bf16* h_out, const bf16* weight, bf16* y,
                                   float* rstd_out, int64_t dim, float eps) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const bf16* res = residual + row * dim;
  const bf16* h_row = branch ? h_out + row * dim : res;
  float sum_sq = 0;
  for (int64_t c = threadIdx.x * V; c < dim; c += int64_t{blockDim.x} * V) {
    float h[V];
    dev::load<V>(res + c, h);
    if (branch) {
      float b[V];
      dev::load<V>(branch + row * dim + c, b);
#pragma unroll
      for (int j = 0; j < V; ++j) h[j] = dev::round_bf16(h[j] + b[j]);
      dev::store<V>(h_out + row * dim + c, h);
    }
#pragma unroll
    for (int j = 0; j < V; ++j) sum_sq += h[j] * h[j];
  }
  sum_sq = dev::block_reduce(sum_sq, dev::Sum{}, 0.0f, scratch);
  const float rstd = 1.0f / sqrtf(sum_sq / static_cast<float>(dim) + eps);
  for (int64_t c = threadIdx.x * V; c < dim; c += int64_t{blockDim.x} * V) {
    float h[V], w[V], out[V];
    dev::load<V>(h_row + c, h);
    dev::load<V>(weight + c, w);
#pragma unroll
    for (int j = 0; j < V; ++j) out[j] = w[j] * dev::round_bf16(h[j] * rstd);
    dev::store<V>(y + row * dim + c, out);
  }
  if (threadIdx.x == 0) rstd_out[row] = rstd;
}

// Block b: rows [b * rows_per_chunk, ...). Per row, with xhat = h * rstd and
// g = dy * w: dx = rstd (g − xhat · mean(g · xhat)), d_h += dx (fp32, also
// copied to bf16), and Σ dy · xhat accumulates per column in shared memory
// (each thread owns its columns), written to partials[b] at the end.
template <int V>
__global__ void rmsnorm_backward_kernel(const bf16* h, const bf16* weight, const float* rstd, const float* dy,
                                        float* d_h, bf16* d_h_bf16, float* partials, int64_t n_rows,
                                        int64_t rows_per_chunk, int64_t dim) {
  extern __shared__ float dw[];  // [dim] when partials is set
  __shared__ float scratch[32];
  const int64_t stride = int64_t{blockDim.x} * V;
  if (partials)
    for (int64_t c = threadIdx.x * V; c < dim; c += stride)
#pragma unroll
      for (int j = 0; j < V; ++j) dw[c + j] = 0;
  const int64_t r0 = blockIdx.x * rows_per_chunk, r1 = min(n_rows, r0 + rows_per_chunk);
  for (int64_t r = r0; r < r1; ++r) {
    const float rs = rstd[r];
    const bf16* h_row = h + r * dim;
    const float* dy_row = dy + r * dim;
    float dot = 0;
    for (int64_t c = threadIdx.x * V; c < dim; c += stride) {
      float x[V], g[V], w[V];
      dev::load<V>(h_row + c, x);
      dev::load<V>(dy_row + c, g);
      dev::load<V>(weight + c, w);
#pragma unroll
      for (int j = 0; j < V; ++j) dot += g[j] * w[j] * (x[j] * rs);
    }
    dot = dev::block_reduce(dot, dev::Sum{}, 0.0f, scratch);
    const float mean = dot / static_cast<float>(dim);
    for (int64_t c = threadIdx.x * V; c < dim; c += stride) {
      float x[V], g[V], w[V], d[V];
      dev::load<V>(h_row + c, x);
      dev::load<V>(dy_row + c, g);
      dev::load<V>(weight + c, w);
      dev::load<V>(d_h + r * dim + c, d);
#pragma unroll
      for (int j = 0; j < V; ++j) {
        const float xhat = x[j] * rs;
        d[j] += rs * (g[j] * w[j] - xhat * mean);
        if (partials) dw[c + j] += g[j] * xhat;
      }
      dev::store<V>(d_h + r * dim + c, d);
      if (d_h_bf16) dev::store<V>(d_h_bf16 + r * dim + c, d);
    }
  }
  if (partials)
    for (int64_t c = threadIdx.x * V; c < dim; c += stride)
#pragma unroll
      for (int j = 0; j < V; ++j) partials[blockIdx.x * dim + c + j] = dw[c + j];
}

template <int V>
void launch_backward(const RmsNormBackward& p, int64_t chunks, cudaStream_t stream) {
  const int64_t rows_per_chunk = (p.n_rows + chunks - 1) / chunks;
  const size_t smem = p.d_weight ? sizeof(float) * static_cast<size_t>(p.dim) : 0;
  if (smem > 48 * 1024)
    check(cudaFuncSetAttribute(rmsnorm_backward_kernel<V>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(smem)),
          "rmsnorm backward: shared memory for dim");
  const unsigned threads = dev::threads_for(p.dim / V, 512);
  rmsnorm_backward_kernel<V><<<static_cast<unsigned>(chunks), threads, smem, stream>>>(
      p.h, p.weight, p.rstd, p.dy, p.d_h, p.d_h_bf16, p.d_weight ? p.partials : nullptr, p.n_rows, rows_per_chunk,
      p.dim);
}

}  // namespace

void add_rmsnorm_forward(const AddRmsNormForward& p, cudaStream_t stream) {
  detail::validate(p);
  if (p.n_rows == 0) return;
  const bool vec = p.dim % 8 == 0 && detail::aligned16(p.residual) && detail::aligned16(p.weight) &&
                   detail::aligned16(p.y) && (!p.branch || (detail::aligned16(p.branch) && detail::aligned16(p.h_out)));
  const unsigned grid = static_cast<unsigned>(p.n_rows);
  if (vec)
    add_rmsnorm_kernel<8><<<grid, dev::threads_for(p.dim / 8, 1024), 0, stream>>>(p.residual, p.branch, p.h_out,
                                                                                  p.weight, p.y, p.rstd, p.dim, p.eps);
  else
    add_rmsnorm_kernel<1><<<grid, dev::threads_for(p.dim, 1024), 0, stream>>>(p.residual, p.branch, p.h_out, p.weight,
                                                                             p.y, p.rstd, p.dim, p.eps);
  check_launch("add_rmsnorm");
}

void rmsnorm_backward(const RmsNormBackward& p, cudaStream_t stream) {
  detail::validate(p);
  const int64_t chunks = detail::column_reduction_chunks(p.n_rows);
  if (chunks == 0) return;
  const bool vec = p.dim % 8 == 0 && detail::aligned16(p.h) && detail::aligned16(p.weight) && detail::aligned16(p.dy) &&
                   detail::aligned16(p.d_h) && (!p.d_h_bf16 || detail::aligned16(p.d_h_bf16));
  if (vec)
    launch_backward<8>(p, chunks, stream);
  else
    launch_backward<1>(p, chunks, stream);
  check_launch("rmsnorm backward");
  if (p.d_weight) detail::sum_partials_add(p.partials, chunks, p.dim, p.d_weight, stream, "rmsnorm backward");
}

}  // namespace duet::backend::cuda
