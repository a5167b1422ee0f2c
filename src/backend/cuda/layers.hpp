#pragma once
// The element-wise and normalisation ops of the Llama-family layer on the GPU,
// each with its backward. Formulas as in the CPU reference (backend/*.hpp);
// what differs is precision: activations bf16, every reduction and every
// statistic in fp32, parameter gradients fp32 and accumulated (+=), the
// residual stream's gradient fp32. All launchers are asynchronous on `stream`,
// validate their arguments first and check the launch.
#include <cstdint>

#include "backend/cuda/common.hpp"

namespace duet::backend::cuda {

// ---- embedding: out[t] = table[ids[t]] ----
struct EmbeddingForward {
  const uint32_t* ids = nullptr;  // [n_tokens], each < vocab
  const bf16* table = nullptr;    // [vocab, dim]
  bf16* out = nullptr;            // [n_tokens, dim]
  int64_t n_tokens = 0, vocab = 0, dim = 0;
};
void embedding_forward(const EmbeddingForward& p, cudaStream_t stream);

// Deterministic scatter-add: the host gives the tokens grouped by id (a stable
// sort of token indices by id, `order`, and group boundaries `group_start`,
// n_groups + 1 of them; group_by_key(ids) in backend/cuda/grouping.hpp builds
// them); each group's rows are summed in token order in fp32 and added once
// into d_table[id]. No atomics, so the result is reproducible.
struct EmbeddingBackward {
  const uint32_t* ids = nullptr;         // [n_tokens]
  const int32_t* order = nullptr;        // [n_tokens]: token indices sorted by id (stable)
  const int32_t* group_start = nullptr;  // [n_groups + 1]: offsets into order
  int64_t n_groups = 0;
  const float* d_out = nullptr;  // [n_tokens, dim] (the residual stream's gradient)
  float* d_table = nullptr;      // [vocab, dim], +=
  int64_t n_tokens = 0, vocab = 0, dim = 0;
};
void embedding_backward(const EmbeddingBackward& p, cudaStream_t stream);

// ---- residual add fused with RMSNorm ----
// With `branch`: h = residual + branch (rounded to bf16 as transformers does),
// written to h_out; without: h = residual. Then y = w * (h * rstd),
// rstd = 1/sqrt(mean(h²) + eps) in fp32, saved per row.
struct AddRmsNormForward {
  const bf16* residual = nullptr;  // [n_rows, dim]
  const bf16* branch = nullptr;    // [n_rows, dim] or null
  bf16* h_out = nullptr;           // [n_rows, dim]; required when branch is set
  const bf16* weight = nullptr;    // [dim]
  bf16* y = nullptr;               // [n_rows, dim]
  float* rstd = nullptr;           // [n_rows]
  int64_t n_rows = 0, dim = 0;
  float eps = 1e-6f;
};
void add_rmsnorm_forward(const AddRmsNormForward& p, cudaStream_t stream);

// Backward of y = w * (h * rstd) given dy (fp32): the input gradient is ADDED
// to the residual stream's gradient d_h (fp32), which is also written as bf16
// to d_h_bf16 when that is set (the next product's input); d_weight += Σ dy·ĥ.
// d_weight's row reduction is deterministic (fixed partition, fixed order):
// `partials` is scratch of partials_floats(n_rows, dim) floats.
struct RmsNormBackward {
  const bf16* h = nullptr;       // [n_rows, dim], the forward's input
  const bf16* weight = nullptr;  // [dim]
  const float* rstd = nullptr;   // [n_rows]
  const float* dy = nullptr;     // [n_rows, dim]
  float* d_h = nullptr;          // [n_rows, dim], +=
  bf16* d_h_bf16 = nullptr;      // [n_rows, dim] or null: copy of d_h after the add
  float* d_weight = nullptr;     // [dim], += (null: frozen)
  float* partials = nullptr;     // scratch
  int64_t n_rows = 0, dim = 0;
};
int64_t rmsnorm_partials_floats(int64_t n_rows, int64_t dim);
void rmsnorm_backward(const RmsNormBackward& p, cudaStream_t stream);

// ---- RoPE at forest positions, in place on q and k ----
// Pairs (i, i + D/2), rotate_half convention; angle = position * inv_freq
// rounded to fp32 as transformers computes it, cos/sin in fp32. inverse = true
// rotates by -angle (the backward, applied to dq and dk).
struct Rope {
  bf16* q = nullptr;  // [n_tokens, q_row_stride]: [Hq, D] at the start of a row
  bf16* k = nullptr;  // [n_tokens, k_row_stride]: [Hkv, D]
  int64_t q_row_stride = 0, k_row_stride = 0;
  const int32_t* positions = nullptr;  // [n_tokens]
  const float* inv_freq = nullptr;     // [D/2], device
  int64_t n_tokens = 0, n_q_heads = 0, n_kv_heads = 0, head_dim = 0;
  bool inverse = false;
};
void rope(const Rope& p, cudaStream_t stream);

// ---- SwiGLU on the fused gate/up product [n_rows, 2 * dim] (gate | up) ----
// out = silu(gate) * up.
struct SwiGluForward {
  const bf16* gate_up = nullptr;  // [n_rows, 2 dim]
  bf16* out = nullptr;            // [n_rows, dim]
  int64_t n_rows = 0, dim = 0;
};
void swiglu_forward(const SwiGluForward& p, cudaStream_t stream);

struct SwiGluBackward {
  const bf16* gate_up = nullptr;  // [n_rows, 2 dim]
  const bf16* d_out = nullptr;    // [n_rows, dim]
  bf16* d_gate_up = nullptr;      // [n_rows, 2 dim], written
  int64_t n_rows = 0, dim = 0;
};
void swiglu_backward(const SwiGluBackward& p, cudaStream_t stream);

// ---- bias gradient (Qwen2's q/k/v biases): d_bias[c] += Σ_rows dy[r, c] ----
// Deterministic (fixed partition and order); partials as rmsnorm_partials_floats.
struct BiasBackward {
  const bf16* dy = nullptr;  // [n_rows, ld]
  int64_t ld = 0;
  float* d_bias = nullptr;  // [dim], +=
  float* partials = nullptr;
  int64_t n_rows = 0, dim = 0;
};
void bias_backward(const BiasBackward& p, cudaStream_t stream);

// ---- conversions ----
void convert_f32_to_bf16(const float* in, bf16* out, int64_t n, cudaStream_t stream);
void fill_f32(float* out, float value, int64_t n, cudaStream_t stream);
// out[i] += in[i] (fp32: ZeRO-2 adds a reduced gradient bucket into the shard).
void add_f32(const float* in, float* out, int64_t n, cudaStream_t stream);
// out[i] = std · N(0, 1), element i a function of (seed, i) only (random
// weights of benchmark models, made on the device: no host copy of 8B values).
void fill_normal_f32(float* out, float std, uint64_t seed, int64_t n, cudaStream_t stream);

}  // namespace duet::backend::cuda
