#pragma once
// Log-probabilities of target tokens only, fused with the LM head: for each
// target t = (row r, token y),
//   z_v = h[r] . W[v],  logp_t = z_y - logsumexp_v z_v.
// The vocabulary is walked in chunks of vocab_chunk rows of W, so memory is
// O(n_targets x vocab_chunk), never [n_rows, vocab]; the logsumexp is combined
// across chunks online. lse per target is saved for the backward, which walks
// the chunks again with p_v = exp(z_v - lse):
//   dh[r] += dlogp_t (W[y] - sum_v p_v W[v])
//   dW[v] += dlogp_t (1[v = y] - p_v) h[r]
// Several targets may name the same row; their contributions add.
#include <cstdint>

#include "backend/common.hpp"

namespace duet::backend {

// What the forward and the backward both read: the hidden rows, the LM head
// and the targets.
template <typename T>
struct TargetLogprobsInputs {
  const T* hidden = nullptr;             // [n_rows, hidden_dim], the final (normed) hidden states
  const T* lm_head = nullptr;            // [vocab, hidden_dim]
  const int32_t* target_rows = nullptr;  // [n_targets], each in [0, n_rows)
  const uint32_t* target_ids = nullptr;  // [n_targets], each < vocab
  int64_t n_rows = 0;
  int64_t hidden_dim = 0;
  int64_t vocab = 0;
  int64_t n_targets = 0;
  int64_t vocab_chunk = 4096;

  void validate_inputs(const char* op) const {
    using namespace detail;
    require_non_negative(op, "n_rows", n_rows);
    require_positive(op, "hidden_dim", hidden_dim);
    require_positive(op, "vocab", vocab);
    require_non_negative(op, "n_targets", n_targets);
    require_positive(op, "vocab_chunk", vocab_chunk);
    require_data(op, "hidden", hidden, n_rows * hidden_dim);
    require_data(op, "lm_head", lm_head, vocab * hidden_dim);
    require_data(op, "target_rows", target_rows, n_targets);
    require_data(op, "target_ids", target_ids, n_targets);
  }
};

template <typename T>
struct TargetLogprobsParams : TargetLogprobsInputs<T> {
  T* logp = nullptr;  // [n_targets], written
  T* lse = nullptr;   // [n_targets], written (saved for the backward)
  // [n_targets] or null: written with sum_v z_v per target (the logits' sum over
  // the vocabulary, for TRL's logits/chosen and logits/rejected metrics).
  T* logit_sum = nullptr;

  void validate() const {
    const char* op = "target_logprobs";
    this->validate_inputs(op);
    detail::require_data(op, "logp", logp, this->n_targets);
    detail::require_data(op, "lse", lse, this->n_targets);
  }
};

template <typename T>
struct TargetLogprobsBackwardParams : TargetLogprobsInputs<T> {
  const T* lse = nullptr;     // [n_targets], from the forward
  const T* d_logp = nullptr;  // [n_targets]
  T* d_hidden = nullptr;      // [n_rows, hidden_dim], accumulated (+=): only target rows change
  T* d_lm_head = nullptr;     // [vocab, hidden_dim], accumulated; null: frozen

  void validate() const {
    const char* op = "target_logprobs backward";
    this->validate_inputs(op);
    detail::require_data(op, "lse", lse, this->n_targets);
    detail::require_data(op, "d_logp", d_logp, this->n_targets);
    detail::require_data(op, "d_hidden", d_hidden, this->n_rows * this->hidden_dim);
  }
};

namespace cpu {
// Both also check target rows and ids against n_rows and vocab.
template <typename T>
void target_logprobs_forward(const TargetLogprobsParams<T>& p);
template <typename T>
void target_logprobs_backward(const TargetLogprobsBackwardParams<T>& p);
}  // namespace cpu

}  // namespace duet::backend
