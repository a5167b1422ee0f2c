// Argument checks of the CUDA ops (host code: see ops_internal.hpp). Only
// sizes and pointers: the data (ids < vocab, positions >= 0, target rows and
// ids in range, group tables) lives on the device and is guaranteed by the
// layout layer, as for the CPU kernels' validate().
#include "backend/common.hpp"
#include "backend/cuda/ops_internal.hpp"

namespace duet::backend::cuda::detail {

using backend::detail::require_data;
using backend::detail::require_non_negative;
using backend::detail::require_positive;
using backend::detail::require_stride;

namespace {
void require_rows(const char* op, int64_t n_rows, int64_t dim) {
  require_non_negative(op, "n_rows", n_rows);
  require_positive(op, "dim", dim);
}

void require_groups(const char* op, const char* order_name, const int32_t* order, const char* start_name,
                    const int32_t* group_start, const char* count_name, int64_t n_groups, int64_t n_items) {
  require_non_negative(op, count_name, n_groups);
  if (n_groups > n_items) fail("{}: {} ({}) exceeds the number of items ({})", op, count_name, n_groups, n_items);
  if (n_items > 0 && n_groups == 0)
    fail("{}: {} is 0 for {} items (fill the grouping with group_by_key, backend/cuda/grouping.hpp)", op, count_name,
         n_items);
  require_data(op, order_name, order, n_items);
  require_data(op, start_name, group_start, n_items > 0 ? n_groups + 1 : 0);
}


void require_tokens(const char* op, int64_t n_tokens, int64_t vocab, int64_t dim, const uint32_t* ids) {
  require_non_negative(op, "n_tokens", n_tokens);
  require_positive(op, "vocab", vocab);
  require_positive(op, "dim", dim);
  require_data(op, "ids", ids, n_tokens);
}
}  // namespace

void validate(const EmbeddingForward& p) {
  const char* op = "embedding";
  require_tokens(op, p.n_tokens, p.vocab, p.dim, p.ids);
  require_data(op, "table", p.table, p.vocab * p.dim);
  require_data(op, "out", p.out, p.n_tokens * p.dim);
}

void validate(const EmbeddingBackward& p) {
  const char* op = "embedding backward";
  require_tokens(op, p.n_tokens, p.vocab, p.dim, p.ids);
  require_groups(op, "order", p.order, "group_start", p.group_start, "n_groups", p.n_groups, p.n_tokens);
  require_data(op, "d_out", p.d_out, p.n_tokens * p.dim);
  require_data(op, "d_table", p.d_table, p.vocab * p.dim);
}

void validate(const AddRmsNormForward& p) {
  const char* op = "add_rmsnorm";
  require_rows(op, p.n_rows, p.dim);
  const int64_t n = p.n_rows * p.dim;
  require_data(op, "residual", p.residual, n);
  if (p.branch) require_data(op, "h_out", p.h_out, n);
  require_data(op, "weight", p.weight, p.dim);
  require_data(op, "y", p.y, n);
  require_data(op, "rstd", p.rstd, p.n_rows);
  if (!(p.eps >= 0)) fail("{}: eps must be >= 0 (got {})", op, p.eps);
}

void validate(const RmsNormBackward& p) {
  const char* op = "rmsnorm backward";
  require_rows(op, p.n_rows, p.dim);
  const int64_t n = p.n_rows * p.dim;
  require_data(op, "h", p.h, n);
  require_data(op, "weight", p.weight, p.dim);
  require_data(op, "rstd", p.rstd, p.n_rows);
  require_data(op, "dy", p.dy, n);
  require_data(op, "d_h", p.d_h, n);
  if (p.d_weight) require_data(op, "partials", p.partials, rmsnorm_partials_floats(p.n_rows, p.dim));
}

void validate(const Rope& p) {
  const char* op = "rope";
  require_non_negative(op, "n_tokens", p.n_tokens);
  require_non_negative(op, "n_q_heads", p.n_q_heads);
  require_non_negative(op, "n_kv_heads", p.n_kv_heads);
  require_positive(op, "head_dim", p.head_dim);
  if (p.head_dim % 2 != 0) fail("rope: head_dim ({}) must be even", p.head_dim);
  require_stride(op, "q_row_stride", p.q_row_stride, p.n_q_heads * p.head_dim);
  require_stride(op, "k_row_stride", p.k_row_stride, p.n_kv_heads * p.head_dim);
  require_data(op, "q", p.q, p.n_tokens * p.n_q_heads);
  require_data(op, "k", p.k, p.n_tokens * p.n_kv_heads);
  require_data(op, "positions", p.positions, p.n_tokens);
  require_data(op, "inv_freq", p.inv_freq, p.head_dim / 2);
}

void validate(const SwiGluForward& p) {
  const char* op = "swiglu";
  require_rows(op, p.n_rows, p.dim);
  require_data(op, "gate_up", p.gate_up, p.n_rows * 2 * p.dim);
  require_data(op, "out", p.out, p.n_rows * p.dim);
}

void validate(const SwiGluBackward& p) {
  const char* op = "swiglu backward";
  require_rows(op, p.n_rows, p.dim);
  require_data(op, "gate_up", p.gate_up, p.n_rows * 2 * p.dim);
  require_data(op, "d_out", p.d_out, p.n_rows * p.dim);
  require_data(op, "d_gate_up", p.d_gate_up, p.n_rows * 2 * p.dim);
}

namespace {
void require_dropout(const char* op, double p) {
  if (!(p > 0 && p < 1)) fail("{}: the dropout probability must be in (0, 1) (got {}; 0 needs no mask)", op, p);
}
}  // namespace

void validate(const LoraDropoutForward& p) {
  const char* op = "lora dropout";
  require_rows(op, p.n_rows, p.dim);
  require_dropout(op, p.p);
  require_data(op, "x", p.x, p.n_rows * p.dim);
  require_data(op, "out", p.out, p.n_rows * p.dim);
}

void validate(const LoraDropoutBackward& p) {
  const char* op = "lora dropout backward";
  require_rows(op, p.n_rows, p.dim);
  require_dropout(op, p.p);
  require_data(op, "g", p.g, p.n_rows * p.dim);
  require_data(op, "dx", p.dx, p.n_rows * p.dim);
}

void validate(const BiasBackward& p) {
  const char* op = "bias backward";
  require_rows(op, p.n_rows, p.dim);
  require_stride(op, "ld", p.ld, p.dim);
  require_data(op, "dy", p.dy, p.n_rows * p.ld);
  require_data(op, "d_bias", p.d_bias, p.dim);
  require_data(op, "partials", p.partials, rmsnorm_partials_floats(p.n_rows, p.dim));
}

namespace {
void validate_shape(const char* op, const TargetLogprobsShape& s, const bf16* hidden, const bf16* lm_head,
                    const int32_t* rows, const uint32_t* ids, const void* workspace) {
  require_non_negative(op, "n_rows", s.n_rows);
  require_positive(op, "hidden_dim", s.hidden_dim);
  require_positive(op, "vocab", s.vocab);
  require_non_negative(op, "n_targets", s.n_targets);
  require_positive(op, "vocab_chunk", s.vocab_chunk);
  if (s.hidden_dim % 8 != 0) fail("{}: hidden_dim ({}) must be a multiple of 8 (16-byte rows)", op, s.hidden_dim);
  require_data(op, "hidden", hidden, s.n_rows * s.hidden_dim);
  require_data(op, "lm_head", lm_head, s.vocab * s.hidden_dim);
  require_data(op, "target_rows", rows, s.n_targets);
  require_data(op, "target_ids", ids, s.n_targets);
  require_data(op, "workspace", workspace, s.n_targets);
  if (s.n_targets > 0 && s.n_rows == 0) fail("{}: n_targets ({}) > 0 but n_rows is 0", op, s.n_targets);
}
}  // namespace

void validate(const TargetLogprobsForward& p) {
  const char* op = "target_logprobs";
  validate_shape(op, p, p.hidden, p.lm_head, p.target_rows, p.target_ids, p.workspace);
  require_data(op, "logp", p.logp, p.n_targets);
  require_data(op, "lse", p.lse, p.n_targets);
}

void validate(const TargetLogprobsBackward& p) {
  const char* op = "target_logprobs backward";
  validate_shape(op, p, p.hidden, p.lm_head, p.target_rows, p.target_ids, p.workspace);
  require_data(op, "lse", p.lse, p.n_targets);
  require_data(op, "d_logp", p.d_logp, p.n_targets);
  require_data(op, "d_hidden", p.d_hidden, p.n_rows * p.hidden_dim);
  require_groups(op, "row_order", p.row_order, "row_group_start", p.row_group_start, "n_row_groups", p.n_row_groups,
                 p.n_targets);
}

void validate(const AdamWStep& p) {
  const char* op = "adamw";
  require_non_negative(op, "n", p.n);
  require_data(op, "master", p.master, p.n);
  require_data(op, "grads", p.grads, p.n);
  require_data(op, "m", p.m, p.n);
  require_data(op, "v", p.v, p.n);
  require_non_negative(op, "n_slots", p.n_slots);
  if (p.n > 0 && p.n_slots == 0) fail("adamw: n_slots is 0 for {} parameters", p.n);
  require_data(op, "slot_offsets", p.slot_offsets, p.n > 0 ? p.n_slots + 1 : 0);
  require_data(op, "slot_decay", p.slot_decay, p.n_slots);
  if (p.max_norm > 0 && p.grad_norm == nullptr) fail("adamw: grad_norm is null but max_norm ({}) clips", p.max_norm);
  require_positive(op, "step", p.step);
  if (!(p.lr >= 0)) fail("adamw: lr must be >= 0 (got {})", p.lr);
  if (!(p.beta1 >= 0 && p.beta1 < 1)) fail("adamw: beta1 must be in [0, 1) (got {})", p.beta1);
  if (!(p.beta2 >= 0 && p.beta2 < 1)) fail("adamw: beta2 must be in [0, 1) (got {})", p.beta2);
  if (!(p.eps > 0)) fail("adamw: eps must be positive (got {})", p.eps);
  if (!(p.weight_decay >= 0)) fail("adamw: weight_decay must be >= 0 (got {})", p.weight_decay);
}

void validate_grad_norm(const float* grads, int64_t n, const double* partials, const double* norm) {
  const char* op = "global_grad_norm";
  require_non_negative(op, "n", n);
  require_data(op, "grads", grads, n);
  require_data(op, "partials", partials, grad_norm_partials(n));
  require_data(op, "norm", norm, 1);
}

void validate_conversion(const char* op, const void* in, bool needs_in, const void* out, int64_t n) {
  require_non_negative(op, "n", n);
  if (needs_in) require_data(op, "in", in, n);
  require_data(op, "out", out, n);
}

}  // namespace duet::backend::cuda::detail
