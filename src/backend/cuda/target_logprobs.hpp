#pragma once
// The target-only LM head on the GPU (as backend/target_logprobs.hpp on the
// CPU): for each target t = (row r, token y), z_v = h[r]·W[v] and
// logp_t = z_y − logsumexp_v z_v. The target rows are gathered once; the
// vocabulary is walked in chunks of vocab_chunk rows of W, one cuBLASLt product
// per chunk into an fp32 [n_targets, chunk] tile, combined by an online
// log-sum-exp in fp32. Memory is O(n_targets × chunk), never [n_rows, vocab].
// The backward walks the chunks again: G = dlogp (onehot − p) (bf16 for the
// products), dH_t += G W_c, dW_c += Gᵀ H (fp32, accumulated), and adds dH_t
// into d_hidden[row_t] deterministically (targets sharing a row, e.g. the last
// prompt token predicting every response's first token, add in target order).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "backend/cuda/common.hpp"
#include "backend/cuda/gemm.hpp"

namespace duet::backend::cuda {

struct TargetLogprobsShape {
  int64_t n_rows = 0, hidden_dim = 0, vocab = 0, n_targets = 0;
  int64_t vocab_chunk = 8192;
};

// Device scratch for both directions (gathered rows, one chunk of logits and of
// G, the running statistics, dH); the caller allocates it once for the largest
// shape (it grows with n_targets × (hidden_dim + vocab_chunk), not with n_rows).
// Any vocab_chunk works (it need not divide vocab nor be a multiple of 8: the
// tiles' row stride is rounded up to 8 internally).
size_t target_logprobs_workspace_bytes(const TargetLogprobsShape& s);

// The rows the products run on for n targets: n rounded up to a multiple of
// 64 (zero rows past the last), as the layers' products run on rows of a
// multiple of 64 tokens, so that the counts a run brings are few enough for
// Gemm::refine to time each (one product's algorithm per count, not per bucket).
int64_t target_logprobs_padded_targets(int64_t n_targets);

// The matrix products the forward (and, with `backward`, the backward; with
// `head_grad`, its LM-head gradient) runs for this shape, pointers unset:
// what Gemm::tune times before a run.
std::vector<GemmParams> target_logprobs_products(const TargetLogprobsShape& s, bool backward, bool head_grad);

struct TargetLogprobsForward : TargetLogprobsShape {
  const bf16* hidden = nullptr;          // [n_rows, hidden_dim] (final normed states)
  const bf16* lm_head = nullptr;         // [vocab, hidden_dim]
  const int32_t* target_rows = nullptr;  // [n_targets] device
  const uint32_t* target_ids = nullptr;  // [n_targets] device
  float* logp = nullptr;                 // [n_targets], written
  float* lse = nullptr;                  // [n_targets], written (for the backward)
  float* logit_sum = nullptr;            // [n_targets] or null: Σ_v z_v (TRL's logits/* metrics)
  void* workspace = nullptr;
};
void target_logprobs_forward(Gemm& gemm, const TargetLogprobsForward& p, cudaStream_t stream);

struct TargetLogprobsBackward : TargetLogprobsShape {
  const bf16* hidden = nullptr;
  const bf16* lm_head = nullptr;
  const int32_t* target_rows = nullptr;
  const uint32_t* target_ids = nullptr;
  const float* lse = nullptr;     // [n_targets], from the forward
  const float* d_logp = nullptr;  // [n_targets] device
  float* d_hidden = nullptr;      // [n_rows, hidden_dim], += at target rows only
  float* d_lm_head = nullptr;     // [vocab, hidden_dim], +=; null: frozen
  void* workspace = nullptr;
  // The targets grouped by row, for the deterministic scatter of dH into
  // d_hidden: group_by_key(target_rows) (backend/cuda/grouping.hpp) on the
  // host when the batch is prepared, copied to the device. Required when
  // n_targets > 0.
  const int32_t* row_order = nullptr;        // [n_targets]: target indices stably sorted by row
  const int32_t* row_group_start = nullptr;  // [n_row_groups + 1]
  int64_t n_row_groups = 0;
};
void target_logprobs_backward(Gemm& gemm, const TargetLogprobsBackward& p, cudaStream_t stream);

}  // namespace duet::backend::cuda
