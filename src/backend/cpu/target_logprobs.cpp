// Target log-probs fused with the LM head, chunked over the vocabulary.
#include "backend/target_logprobs.hpp"
#include "backend/cpu/threading.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/cpu/blas.hpp"

namespace duet::backend::cpu {

namespace {

void check_targets(const char* op, const int32_t* rows, const uint32_t* ids, int64_t n_targets,
                   int64_t n_rows, int64_t vocab) {
  for (int64_t t = 0; t < n_targets; ++t) {
    if (rows[t] < 0 || rows[t] >= n_rows)
      fail("{}: target_rows[{}] = {} is outside [0, {})", op, t, rows[t], n_rows);
    if (ids[t] >= vocab) fail("{}: target_ids[{}] = {} is outside [0, {})", op, t, ids[t], vocab);
  }
}

// The hidden rows of the targets, one per target (rows may repeat), so each
// chunk's logits are one gemm: [n_targets, dim].
template <typename T>
std::vector<T> gather_rows(const T* hidden, const int32_t* rows, int64_t n_targets, int64_t dim) {
  std::vector<T> out(n_targets * dim);
#pragma omp parallel for schedule(static) if (parallel_worth(n_targets * dim))
  for (int64_t t = 0; t < n_targets; ++t)
    std::memcpy(out.data() + t * dim, hidden + int64_t{rows[t]} * dim, sizeof(T) * dim);
  return out;
}

}  // namespace

template <typename T>
void target_logprobs_forward(const TargetLogprobsParams<T>& p) {
  p.validate();
  check_targets("target_logprobs", p.target_rows, p.target_ids, p.n_targets, p.n_rows, p.vocab);
  const int64_t nt = p.n_targets, dim = p.hidden_dim, chunk = std::min(p.vocab_chunk, p.vocab);
  if (nt == 0) return;
  const std::vector<T> ht = gather_rows(p.hidden, p.target_rows, nt, dim);
  std::vector<T> z(nt * chunk);
  // Running max and sum of exp(z - max) per target, and the target's logit.
  std::vector<T> run_max(nt, -std::numeric_limits<T>::infinity()), run_sum(nt, T(0));
  std::vector<T> z_target(nt, std::numeric_limits<T>::quiet_NaN());
  std::vector<double> z_sum(p.logit_sum ? nt : 0, 0.0);  // sum_v z_v, in double across chunks
  for (int64_t v0 = 0; v0 < p.vocab; v0 += chunk) {
    const int64_t c = std::min(chunk, p.vocab - v0);
    // z [nt, c] = ht [nt, dim] W[v0 : v0 + c]^T
    blas::gemm(false, true, nt, c, dim, T(1), ht.data(), dim, p.lm_head + v0 * dim, dim, T(0),
               z.data(), c);
#pragma omp parallel for schedule(static) if (parallel_worth(nt * c))
    for (int64_t t = 0; t < nt; ++t) {
      const T* row = z.data() + t * c;
      const T chunk_max = *std::max_element(row, row + c);
      const T m_new = std::max(run_max[t], chunk_max);
      T sum = 0;
      for (int64_t v = 0; v < c; ++v) sum += std::exp(row[v] - m_new);
      run_sum[t] = run_sum[t] * std::exp(run_max[t] - m_new) + sum;
      run_max[t] = m_new;
      const int64_t y = p.target_ids[t];
      if (y >= v0 && y < v0 + c) z_target[t] = row[y - v0];
      if (p.logit_sum) {
        double s = 0;
        for (int64_t v = 0; v < c; ++v) s += static_cast<double>(row[v]);
        z_sum[t] += s;
      }
    }
  }
  for (int64_t t = 0; t < nt; ++t) {
    p.lse[t] = run_max[t] + std::log(run_sum[t]);
    p.logp[t] = z_target[t] - p.lse[t];
    if (p.logit_sum) p.logit_sum[t] = static_cast<T>(z_sum[t]);
  }
}

template <typename T>
void target_logprobs_backward(const TargetLogprobsBackwardParams<T>& p) {
  p.validate();
  check_targets("target_logprobs backward", p.target_rows, p.target_ids, p.n_targets, p.n_rows,
                p.vocab);
  const int64_t nt = p.n_targets, dim = p.hidden_dim, chunk = std::min(p.vocab_chunk, p.vocab);
  if (nt == 0) return;
  const std::vector<T> ht = gather_rows(p.hidden, p.target_rows, nt, dim);
  std::vector<T> z(nt * chunk);
  std::vector<T> dht(nt * dim, T(0));
  for (int64_t v0 = 0; v0 < p.vocab; v0 += chunk) {
    const int64_t c = std::min(chunk, p.vocab - v0);
    const T* w = p.lm_head + v0 * dim;
    blas::gemm(false, true, nt, c, dim, T(1), ht.data(), dim, w, dim, T(0), z.data(), c);
    // z <- G = dlogp (onehot - softmax), in place.
#pragma omp parallel for schedule(static) if (parallel_worth(nt * c))
    for (int64_t t = 0; t < nt; ++t) {
      T* row = z.data() + t * c;
      const T lse = p.lse[t], dl = p.d_logp[t];
      for (int64_t v = 0; v < c; ++v) row[v] = -dl * std::exp(row[v] - lse);
      const int64_t y = p.target_ids[t];
      if (y >= v0 && y < v0 + c) row[y - v0] += dl;
    }
    // dht [nt, dim] += G [nt, c] W_chunk [c, dim]
    blas::gemm(false, false, nt, dim, c, T(1), z.data(), c, w, dim, T(1), dht.data(), dim);
    // dW_chunk [c, dim] += G^T [c, nt] ht [nt, dim]
    if (p.d_lm_head)
      blas::gemm(true, false, c, dim, nt, T(1), z.data(), c, ht.data(), dim, T(1),
                 p.d_lm_head + v0 * dim, dim);
  }
  // Scatter in target order: targets sharing a row add up, deterministically.
  for (int64_t t = 0; t < nt; ++t) {
    T* dst = p.d_hidden + int64_t{p.target_rows[t]} * dim;
    const T* src = dht.data() + t * dim;
    for (int64_t d = 0; d < dim; ++d) dst[d] += src[d];
  }
}

template void target_logprobs_forward<float>(const TargetLogprobsParams<float>&);
template void target_logprobs_forward<double>(const TargetLogprobsParams<double>&);
template void target_logprobs_backward<float>(const TargetLogprobsBackwardParams<float>&);
template void target_logprobs_backward<double>(const TargetLogprobsBackwardParams<double>&);

}  // namespace duet::backend::cpu
