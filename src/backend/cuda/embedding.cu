// Embedding lookup (a row gather, shared with the LM head's gather of target
// rows) and its deterministic grouped scatter-add backward (shared with the
// LM head's scatter of dH into d_hidden).
#include "backend/cuda/layers.hpp"
#include "backend/cuda/ops_device.cuh"
#include "backend/cuda/ops_internal.hpp"

namespace duet::backend::cuda {

namespace {

// One thread per V consecutive elements of an output row.
template <typename Index, int V>
__global__ void gather_rows_kernel(const Index* rows, const bf16* table, bf16* out, int64_t n, int64_t dim) {
  const int64_t per_row = dim / V;
  const int64_t idx = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (idx >= n * per_row) return;
  const int64_t t = idx / per_row, c = (idx % per_row) * V;
  const bf16* src = table + static_cast<int64_t>(rows[t]) * dim + c;
  bf16* dst = out + t * dim + c;
  if constexpr (V == 8)
    *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
  else
    *dst = *src;
}

template <typename Index>
void gather(const Index* rows, const bf16* table, bf16* out, int64_t n, int64_t dim, cudaStream_t stream,
            const char* op) {
  if (n == 0) return;
  constexpr int kThreads = 256;
  if (dim % 8 == 0 && detail::aligned16(table) && detail::aligned16(out))
    gather_rows_kernel<Index, 8><<<grid_for(n * dim / 8, kThreads), kThreads, 0, stream>>>(rows, table, out, n, dim);
  else
    gather_rows_kernel<Index, 1><<<grid_for(n * dim, kThreads), kThreads, 0, stream>>>(rows, table, out, n, dim);
  check_launch(op);
}

// Block (g, y): group g, columns [y * blockDim * V, ...). Each thread sums its
// V columns over the group's rows in order, then adds once into dst.
template <typename Key, int V>
__global__ void grouped_rows_add_kernel(const int32_t* order, const int32_t* group_start, const Key* keys,
                                        const float* src, float* dst, int64_t dim) {
  const int64_t c = (int64_t{blockIdx.y} * blockDim.x + threadIdx.x) * V;
  if (c >= dim) return;
  const int32_t begin = group_start[blockIdx.x], end = group_start[blockIdx.x + 1];
  float acc[V] = {};
  for (int32_t i = begin; i < end; ++i) {
    float x[V];
    dev::load<V>(src + int64_t{order[i]} * dim + c, x);
#pragma unroll
    for (int j = 0; j < V; ++j) acc[j] += x[j];
  }
  float* out = dst + static_cast<int64_t>(keys[order[begin]]) * dim + c;
  float d[V];
  dev::load<V>(out, d);
#pragma unroll
  for (int j = 0; j < V; ++j) d[j] += acc[j];
  dev::store<V>(out, d);
}

template <typename Key>
void grouped_add(const int32_t* order, const int32_t* group_start, int64_t n_groups, const Key* keys,
                 const float* src, float* dst, int64_t dim, cudaStream_t stream, const char* op) {
  if (n_groups == 0) return;
  constexpr int kThreads = 128;
  const bool vec = dim % 4 == 0 && detail::aligned16(src) && detail::aligned16(dst);
  const int64_t vectors = vec ? dim / 4 : dim;
  const dim3 grid(static_cast<unsigned>(n_groups), grid_for(vectors, kThreads));
  if (vec)
    grouped_rows_add_kernel<Key, 4><<<grid, kThreads, 0, stream>>>(order, group_start, keys, src, dst, dim);
  else
    grouped_rows_add_kernel<Key, 1><<<grid, kThreads, 0, stream>>>(order, group_start, keys, src, dst, dim);
  check_launch(op);
}

}  // namespace

namespace detail {
void gather_rows(const uint32_t* rows, const bf16* table, bf16* out, int64_t n, int64_t dim, cudaStream_t stream,
                 const char* op) {
  gather(rows, table, out, n, dim, stream, op);
}
void gather_rows(const int32_t* rows, const bf16* table, bf16* out, int64_t n, int64_t dim, cudaStream_t stream,
                 const char* op) {
  gather(rows, table, out, n, dim, stream, op);
}
void grouped_rows_add(const int32_t* order, const int32_t* group_start, int64_t n_groups, const uint32_t* keys,
                      const float* src, float* dst, int64_t dim, cudaStream_t stream, const char* op) {
  grouped_add(order, group_start, n_groups, keys, src, dst, dim, stream, op);
}
void grouped_rows_add(const int32_t* order, const int32_t* group_start, int64_t n_groups, const int32_t* keys,
                      const float* src, float* dst, int64_t dim, cudaStream_t stream, const char* op) {
  grouped_add(order, group_start, n_groups, keys, src, dst, dim, stream, op);
}
}  // namespace detail

void embedding_forward(const EmbeddingForward& p, cudaStream_t stream) {
  detail::validate(p);
  detail::gather_rows(p.ids, p.table, p.out, p.n_tokens, p.dim, stream, "embedding");
}

void embedding_backward(const EmbeddingBackward& p, cudaStream_t stream) {
  detail::validate(p);
  detail::grouped_rows_add(p.order, p.group_start, p.n_groups, p.ids, p.d_out, p.d_table, p.dim, stream,
                           "embedding backward");
}

}  // namespace duet::backend::cuda
