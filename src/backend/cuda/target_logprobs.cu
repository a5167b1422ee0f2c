// The target-only LM head: gathered target rows, one cuBLASLt product per
// vocabulary chunk into an fp32 logits tile, an online log-sum-exp in fp32
// (one block per target, fixed reduction trees), and the backward's products
// through the same Gemm. Deterministic: no atomics (dH reaches d_hidden by the
// grouped scatter, targets of one row summed in target order).
#include <cmath>
#include <vector>

#include "backend/cuda/ops_device.cuh"
#include "backend/cuda/ops_internal.hpp"
#include "backend/cuda/target_logprobs.hpp"

namespace duet::backend::cuda {

namespace {

constexpr int kThreads = 256;

size_t align_up(size_t bytes) { return (bytes + 255) / 256 * 256; }

// Where each buffer lives in the workspace.
struct Layout {
  int64_t ld = 0;  // row stride of the logits and G tiles: chunk rounded up to 8
  size_t ht = 0, z = 0, g = 0, run_max = 0, run_sum = 0, z_target = 0, z_sum = 0, dht = 0, total = 0;
};

Layout layout_for(const TargetLogprobsShape& s) {
  Layout l;
  const int64_t chunk = s.vocab_chunk < s.vocab ? s.vocab_chunk : s.vocab;
  l.ld = (chunk + 7) / 8 * 8;
  const size_t nt = static_cast<size_t>(target_logprobs_padded_targets(s.n_targets)), ld = static_cast<size_t>(l.ld);
  const size_t hd = static_cast<size_t>(s.hidden_dim);
  size_t at = 0;
  auto take = [&](size_t bytes) {
    const size_t offset = at;
    at += align_up(bytes);
    return offset;
  };
  l.ht = take(nt * hd * sizeof(bf16));
  l.z = take(nt * ld * sizeof(float));
  l.g = take(nt * ld * sizeof(bf16));
  l.run_max = take(nt * sizeof(float));
  l.run_sum = take(nt * sizeof(float));
  l.z_target = take(nt * sizeof(float));
  l.z_sum = take(nt * sizeof(float));
  l.dht = take(nt * hd * sizeof(float));
  l.total = at;
  return l;
}

template <typename T>
T* at(void* workspace, size_t offset) {
  return reinterpret_cast<T*>(static_cast<char*>(workspace) + offset);
}

__global__ void init_stats_kernel(float* run_max, float* run_sum, float* z_target, float* z_sum, int64_t n) {
  const int64_t t = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (t >= n) return;
  run_max[t] = -INFINITY;
  run_sum[t] = 0;
  z_target[t] = NAN;
  z_sum[t] = 0;
}

// Block t folds chunk [v0, v0 + c) of target t's logits into its running
// max and sum of exp(z - max), its Σ z, and picks up z at the target id.
__global__ void online_lse_kernel(const float* z, int64_t ld, int64_t c, int64_t v0, const uint32_t* ids,
                                  float* run_max, float* run_sum, float* z_target, float* z_sum) {
  __shared__ float scratch[32];
  const int64_t t = blockIdx.x;
  const float* row = z + t * ld;
  float mx = -INFINITY;
  for (int64_t v = threadIdx.x; v < c; v += blockDim.x) mx = fmaxf(mx, row[v]);
  mx = dev::block_reduce(mx, dev::Max{}, -INFINITY, scratch);
  const float m_old = run_max[t], m_new = fmaxf(m_old, mx);
  float sum = 0, total = 0;
  for (int64_t v = threadIdx.x; v < c; v += blockDim.x) {
    sum += expf(row[v] - m_new);
    total += row[v];
  }
  sum = dev::block_reduce(sum, dev::Sum{}, 0.0f, scratch);
  total = dev::block_reduce(total, dev::Sum{}, 0.0f, scratch);
  if (threadIdx.x == 0) {
    run_sum[t] = run_sum[t] * expf(m_old - m_new) + sum;
    run_max[t] = m_new;
    z_sum[t] += total;
    const int64_t y = ids[t];
    if (y >= v0 && y < v0 + c) z_target[t] = row[y - v0];
  }
}

__global__ void finish_kernel(const float* run_max, const float* run_sum, const float* z_target, const float* z_sum,
                              float* lse, float* logp, float* logit_sum, int64_t n) {
  const int64_t t = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (t >= n) return;
  const float l = run_max[t] + logf(run_sum[t]);
  lse[t] = l;
  logp[t] = z_target[t] - l;
  if (logit_sum) logit_sum[t] = z_sum[t];
}

// G[t, v] = dlogp_t (1[v = y_t] − exp(z − lse_t)) over chunk [v0, v0 + c), in bf16.
// Block (t, y) covers columns [y * blockDim, ...).
__global__ void softmax_grad_kernel(const float* z, bf16* g, int64_t ld, int64_t c, int64_t v0, const uint32_t* ids,
                                    const float* lse, const float* d_logp) {
  const int64_t t = blockIdx.x, v = int64_t{blockIdx.y} * blockDim.x + threadIdx.x;
  if (v >= c) return;
  const float dl = d_logp[t], p = expf(z[t * ld + v] - lse[t]);
  const float grad = v0 + v == static_cast<int64_t>(ids[t]) ? dl - dl * p : -dl * p;
  g[t * ld + v] = __float2bfloat16_rn(grad);
}

// Z [nt, c] = Ht [nt, d] · W[v0 : v0 + c]ᵀ in fp32.
GemmParams logits_product(const TargetLogprobsShape& s, const Layout& l, const bf16* ht, const bf16* lm_head, float* z,
                          int64_t v0, int64_t c) {
  GemmParams p;
  p.a = ht;
  p.b = lm_head + v0 * s.hidden_dim;
  p.b_trans = true;
  p.d = z;
  p.d_type = DType::F32;
  p.m = target_logprobs_padded_targets(s.n_targets), p.n = c, p.k = s.hidden_dim;
  p.lda = s.hidden_dim, p.ldb = s.hidden_dim, p.ldd = l.ld;
  return p;
}

// dHt [nt, d] (+)= G [nt, c] · W_c [c, d]; the first chunk overwrites.
GemmParams hidden_grad_product(const TargetLogprobsShape& s, const Layout& l, const bf16* g, const bf16* w_c, float* dht,
                               int64_t v0, int64_t c) {
  GemmParams dh;
  dh.a = g, dh.b = w_c, dh.d = dht, dh.d_type = DType::F32;
  dh.m = target_logprobs_padded_targets(s.n_targets), dh.n = s.hidden_dim, dh.k = c;
  dh.lda = l.ld, dh.ldb = s.hidden_dim, dh.ldd = s.hidden_dim;
  dh.beta = v0 == 0 ? 0.0f : 1.0f;
  return dh;
}

// dW_c [c, d] += Gᵀ [c, nt] · Ht [nt, d]
GemmParams head_grad_product(const TargetLogprobsShape& s, const Layout& l, const bf16* g, const bf16* ht, float* dw_c,
                             int64_t c) {
  GemmParams dw;
  dw.a = g, dw.a_trans = true, dw.b = ht, dw.d = dw_c, dw.d_type = DType::F32;
  dw.m = c, dw.n = s.hidden_dim, dw.k = target_logprobs_padded_targets(s.n_targets);
  dw.lda = l.ld, dw.ldb = s.hidden_dim, dw.ldd = s.hidden_dim;
  dw.beta = 1.0f;
  return dw;
}

int64_t chunk_of(const TargetLogprobsShape& s) { return s.vocab_chunk < s.vocab ? s.vocab_chunk : s.vocab; }

// Zero bytes [used, all) of rows of `row_bytes` bytes starting at `base`: the
// padding rows, so that products over them add exact zeros.
void zero_padding(void* base, int64_t used, int64_t all, size_t row_bytes, cudaStream_t stream, const char* what) {
  if (all > used)
    check(cudaMemsetAsync(static_cast<char*>(base) + static_cast<size_t>(used) * row_bytes, 0,
                          static_cast<size_t>(all - used) * row_bytes, stream),
          what);
}

}  // namespace

int64_t target_logprobs_padded_targets(int64_t n_targets) { return (n_targets + 63) / 64 * 64; }

size_t target_logprobs_workspace_bytes(const TargetLogprobsShape& s) { return layout_for(s).total; }

std::vector<GemmParams> target_logprobs_products(const TargetLogprobsShape& s, bool backward, bool head_grad) {
  std::vector<GemmParams> products;
  const Layout l = layout_for(s);
  const int64_t chunk = chunk_of(s);
  // Every chunk is `chunk` wide but the last, which may be narrower. (The
  // pointers are not the products' own: only their shapes are read.)
  std::vector<int64_t> widths{chunk};
  if (s.vocab % chunk) widths.push_back(s.vocab % chunk);
  for (const int64_t c : widths) {
    products.push_back(logits_product(s, l, nullptr, nullptr, nullptr, 0, c));
    if (backward) products.push_back(hidden_grad_product(s, l, nullptr, nullptr, nullptr, 0, c));
    if (backward && head_grad) products.push_back(head_grad_product(s, l, nullptr, nullptr, nullptr, c));
  }
  return products;
}

void target_logprobs_forward(Gemm& gemm, const TargetLogprobsForward& p, cudaStream_t stream) {
  detail::validate(p);
  const int64_t nt = p.n_targets;
  if (nt == 0) return;
  const Layout l = layout_for(p);
  bf16* ht = at<bf16>(p.workspace, l.ht);
  float* z = at<float>(p.workspace, l.z);
  float *run_max = at<float>(p.workspace, l.run_max), *run_sum = at<float>(p.workspace, l.run_sum);
  float *z_target = at<float>(p.workspace, l.z_target), *z_sum = at<float>(p.workspace, l.z_sum);
  detail::gather_rows(p.target_rows, p.hidden, ht, nt, p.hidden_dim, stream, "target_logprobs");
  zero_padding(ht, nt, target_logprobs_padded_targets(nt), p.hidden_dim * sizeof(bf16), stream, "target_logprobs");
  init_stats_kernel<<<grid_for(nt, kThreads), kThreads, 0, stream>>>(run_max, run_sum, z_target, z_sum, nt);
  check_launch("target_logprobs");
  const int64_t chunk = chunk_of(p);
  for (int64_t v0 = 0; v0 < p.vocab; v0 += chunk) {
    const int64_t c = chunk < p.vocab - v0 ? chunk : p.vocab - v0;
    gemm.run(logits_product(p, l, ht, p.lm_head, z, v0, c), stream);
    online_lse_kernel<<<static_cast<unsigned>(nt), kThreads, 0, stream>>>(z, l.ld, c, v0, p.target_ids, run_max,
                                                                          run_sum, z_target, z_sum);
    check_launch("target_logprobs");
  }
  finish_kernel<<<grid_for(nt, kThreads), kThreads, 0, stream>>>(run_max, run_sum, z_target, z_sum, p.lse, p.logp,
                                                                  p.logit_sum, nt);
  check_launch("target_logprobs");
}

void target_logprobs_backward(Gemm& gemm, const TargetLogprobsBackward& p, cudaStream_t stream) {
  detail::validate(p);
  const int64_t nt = p.n_targets, hd = p.hidden_dim;
  if (nt == 0) return;
  const Layout l = layout_for(p);
  bf16* ht = at<bf16>(p.workspace, l.ht);
  float* z = at<float>(p.workspace, l.z);
  bf16* g = at<bf16>(p.workspace, l.g);
  float* dht = at<float>(p.workspace, l.dht);
  detail::gather_rows(p.target_rows, p.hidden, ht, nt, hd, stream, "target_logprobs backward");
  // Padding rows: Ht and G zero (not merely finite), so dW_c gets exact zeros from them.
  zero_padding(ht, nt, target_logprobs_padded_targets(nt), hd * sizeof(bf16), stream, "target_logprobs backward");
  zero_padding(g, nt, target_logprobs_padded_targets(nt), l.ld * sizeof(bf16), stream, "target_logprobs backward");
  const int64_t chunk = chunk_of(p);
  for (int64_t v0 = 0; v0 < p.vocab; v0 += chunk) {
    const int64_t c = chunk < p.vocab - v0 ? chunk : p.vocab - v0;
    const bf16* w = p.lm_head + v0 * hd;
    gemm.run(logits_product(p, l, ht, p.lm_head, z, v0, c), stream);
    const dim3 grid(static_cast<unsigned>(nt), grid_for(c, kThreads));
    softmax_grad_kernel<<<grid, kThreads, 0, stream>>>(z, g, l.ld, c, v0, p.target_ids, p.lse, p.d_logp);
    check_launch("target_logprobs backward");
    gemm.run(hidden_grad_product(p, l, g, w, dht, v0, c), stream);
    if (p.d_lm_head) gemm.run(head_grad_product(p, l, g, ht, p.d_lm_head + v0 * hd, c), stream);
  }
  detail::grouped_rows_add(p.row_order, p.row_group_start, p.n_row_groups, p.target_rows, dht, p.d_hidden, hd, stream,
                           "target_logprobs backward");
}

}  // namespace duet::backend::cuda
