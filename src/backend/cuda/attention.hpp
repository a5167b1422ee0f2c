#pragma once
// Forest-masked flash attention on the GPU (forward and backward), bf16 q/k/v/o
// with fp32 softmax statistics. The mask is the token forest's (backend/
// attention.hpp): key j is visible to query i iff j <= i < visible_until[j]
// (and, with a window, position[i] − position[j] < window). Per batch,
// attention_plan() computes the per-tile min/max of visible_until / positions
// on the GPU (once, shared by every layer and both directions); the kernels
// classify each (query block, key tile) pair with backend::classify_tile:
// Skip tiles cost nothing, Full tiles run without a mask, Partial tiles apply
// it per element. Never a T×T mask. Head dims 64 and 128; GQA; windows.
#include <cstddef>
#include <cstdint>

#include "backend/attention.hpp"
#include "backend/cuda/common.hpp"

namespace duet::backend::cuda {

// Throws duet::Error for shapes the kernels do not support (head_dim other
// than 64/128, ...), with what to do.
void attention_check_supported(const AttentionShape& s);

// Device scratch for a shape: the plan (32 bytes per 64 tokens), the
// backward's D_i = rowsum(dO∘O) (4 · n_tokens · n_q_heads bytes, overwritten by
// every backward call) and the Hopper forward's work counter (256 bytes, zeroed
// by the plan, counted up and back to zero by each forward): calls sharing a
// workspace must not overlap (forward or backward).
size_t attention_workspace_bytes(const AttentionShape& s);

// Once per batch, before any forward/backward on this workspace and ordered
// before them (same stream): per-tile visible_until/position ranges and per
// query block the range of key tiles classify_tile keeps. visible_until /
// positions are device pointers in s. The GPU uses its own tiles (64 keys;
// 128 or 64 queries); s.tile_q / s.tile_k are the CPU reference's. Every
// kernel is deterministic: bitwise reproducible results (the one atomic, the
// Hopper forward's work counter, only decides which CTA computes an output).
void attention_plan(const AttentionShape& s, void* workspace, cudaStream_t stream);

struct AttentionForward : AttentionShape {
  const bf16* q = nullptr;  // [n_tokens, q_row_stride]: [Hq, D] at the start of a row
  const bf16* k = nullptr;  // [n_tokens, k_row_stride]: [Hkv, D]
  const bf16* v = nullptr;  // [n_tokens, v_row_stride]: [Hkv, D]
  bf16* o = nullptr;        // [n_tokens, o_row_stride]: [Hq, D]
  float* lse = nullptr;     // [n_tokens, n_q_heads]
  int64_t q_row_stride = 0, k_row_stride = 0, v_row_stride = 0, o_row_stride = 0;
  void* workspace = nullptr;  // planned by attention_plan for this batch
};
void attention_forward(const AttentionForward& p, cudaStream_t stream);

struct AttentionBackward : AttentionShape {
  const bf16 *q = nullptr, *k = nullptr, *v = nullptr, *o = nullptr, *d_o = nullptr;
  const float* lse = nullptr;
  bf16 *dq = nullptr, *dk = nullptr, *dv = nullptr;  // written
  int64_t q_row_stride = 0, k_row_stride = 0, v_row_stride = 0, o_row_stride = 0;
  int64_t do_row_stride = 0, dq_row_stride = 0, dk_row_stride = 0, dv_row_stride = 0;
  void* workspace = nullptr;
};
void attention_backward(const AttentionBackward& p, cudaStream_t stream);

}  // namespace duet::backend::cuda
