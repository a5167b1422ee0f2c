// Deterministic column reductions over rows (parameter gradients of RMSNorm
// weights and biases): a fixed partition of the rows into chunks, each chunk's
// sum written to `partials`, then the chunks summed in order. No atomics.
#include "backend/cuda/layers.hpp"
#include "backend/cuda/ops_device.cuh"
#include "backend/cuda/ops_internal.hpp"

namespace duet::backend::cuda {

namespace {

constexpr int64_t kMaxChunks = 256;

// out[c] += Σ_k partials[k, c], k in order.
__global__ void sum_partials_kernel(const float* partials, int64_t n_chunks, int64_t dim, float* out) {
  const int64_t c = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (c >= dim) return;
  float s = 0;
  for (int64_t k = 0; k < n_chunks; ++k) s += partials[k * dim + c];
  out[c] += s;
}

// Block (chunk, y): columns [y * blockDim * V, ...) summed over the chunk's rows.
template <int V>
__global__ void bias_partials_kernel(const bf16* dy, int64_t ld, int64_t n_rows, int64_t rows_per_chunk, int64_t dim,
                                     float* partials) {
  const int64_t c = (int64_t{blockIdx.y} * blockDim.x + threadIdx.x) * V;
  if (c >= dim) return;
  const int64_t r0 = blockIdx.x * rows_per_chunk, r1 = min(n_rows, r0 + rows_per_chunk);
  float acc[V] = {};
  for (int64_t r = r0; r < r1; ++r) {
    float x[V];
    dev::load<V>(dy + r * ld + c, x);
#pragma unroll
    for (int j = 0; j < V; ++j) acc[j] += x[j];
  }
  dev::store<V>(partials + blockIdx.x * dim + c, acc);
}

}  // namespace

namespace detail {

int64_t column_reduction_chunks(int64_t n_rows) {
  if (n_rows <= 0) return 0;
  const int64_t chunks = n_rows < kMaxChunks ? n_rows : kMaxChunks;
  const int64_t rows_per_chunk = (n_rows + chunks - 1) / chunks;
  return (n_rows + rows_per_chunk - 1) / rows_per_chunk;
}

void sum_partials_add(const float* partials, int64_t n_chunks, int64_t dim, float* out, cudaStream_t stream,
                      const char* op) {
  constexpr int kThreads = 256;
  sum_partials_kernel<<<grid_for(dim, kThreads), kThreads, 0, stream>>>(partials, n_chunks, dim, out);
  check_launch(op);
}

}  // namespace detail

int64_t rmsnorm_partials_floats(int64_t n_rows, int64_t dim) {
  const int64_t chunks = detail::column_reduction_chunks(n_rows);
  return (chunks > 0 ? chunks : 1) * (dim > 0 ? dim : 0);
}

void bias_backward(const BiasBackward& p, cudaStream_t stream) {
  detail::validate(p);
  const int64_t chunks = detail::column_reduction_chunks(p.n_rows);
  if (chunks == 0) return;
  const int64_t rows_per_chunk = (p.n_rows + chunks - 1) / chunks;
  constexpr int kThreads = 128;
  const bool vec = p.dim % 8 == 0 && p.ld % 8 == 0 && detail::aligned16(p.dy) && detail::aligned16(p.partials);
  const int64_t vectors = vec ? p.dim / 8 : p.dim;
  const dim3 grid(static_cast<unsigned>(chunks), grid_for(vectors, kThreads));
  if (vec)
    bias_partials_kernel<8><<<grid, kThreads, 0, stream>>>(p.dy, p.ld, p.n_rows, rows_per_chunk, p.dim, p.partials);
  else
    bias_partials_kernel<1><<<grid, kThreads, 0, stream>>>(p.dy, p.ld, p.n_rows, rows_per_chunk, p.dim, p.partials);
  check_launch("bias backward");
  detail::sum_partials_add(p.partials, chunks, p.dim, p.d_bias, stream, "bias backward");
}

}  // namespace duet::backend::cuda
