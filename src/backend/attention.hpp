#pragma once
// Attention under the token-forest mask (BRIEF §3, docs/layout.md):
//   key j is visible to query i  <=>  j <= i < visible_until[j]
// and, with a sliding window (Mistral), also position[i] - position[j] < window.
// q [T, Hq, D], k and v [T, Hkv, D] (GQA: query head h reads kv head
// h / (Hq / Hkv), as transformers' repeat_kv), scale 1/sqrt(D).
//
// Forward: o [T, Hq, D] and lse [T, Hq] = log sum_j exp(scale q_i.k_j), by an
// online softmax over key tiles. Backward (flash-attention 2 style) recomputes
// P_ij = exp(scale q_i.k_j - lse_i) from o, lse and do:
//   D_i = rowsum(do_i * o_i),  dP_ij = do_i . v_j,  dS_ij = P_ij (dP_ij - D_i)
//   dv_j = sum_i P_ij do_i,  dq_i = scale sum_j dS_ij k_j,  dk_j = scale sum_i dS_ij q_i
// dk and dv of a kv head sum over the query heads that share it.
//
// Tiles: queries in blocks of tile_q, keys in tiles of tile_k. Each (block,
// tile) pair is classified from the tile's min/max of visible_until (and of
// positions with a window) as Skip (nothing visible: never touched), Full
// (everything visible: no per-element mask) or Partial. No dense T x T mask is
// ever built. classify_tile is the rule a CUDA kernel uses as well.
#include <cstdint>
#include <initializer_list>
#include <utility>

#include "backend/common.hpp"

// classify_tile and attention_visible are shared with the CUDA kernels
// (DUET_HOST_DEVICE), so the GPU skips exactly the tiles the CPU skips.

namespace duet::backend {

enum class TileKind { Skip, Full, Partial };

// A block of queries [begin, end) and the range of their positions.
struct QueryBlock {
  int32_t begin = 0, end = 0;
  int32_t min_position = 0, max_position = 0;
};

// A tile of keys [begin, end), the range of their visible_until, of positions.
struct KeyTile {
  int32_t begin = 0, end = 0;
  int32_t min_visible_until = 0, max_visible_until = 0;
  int32_t min_position = 0, max_position = 0;
};

// window = 0: no sliding window (positions are then not used).
DUET_HOST_DEVICE inline TileKind classify_tile(const QueryBlock& q, const KeyTile& k,
                                               int64_t window) {
  // Skip: every query precedes every key, or comes after every key's subtree
  // ended, or (window) is too far from every key.
  if (q.end - 1 < k.begin || q.begin >= k.max_visible_until) return TileKind::Skip;
  if (window > 0 && int64_t{q.min_position} - k.max_position >= window) return TileKind::Skip;
  // Full: every query is at or after every key and before every key's end,
  // and (window) every pair is close enough.
  const bool causal_full = q.begin >= k.end - 1 && q.end - 1 < k.min_visible_until;
  const bool window_full = window == 0 || int64_t{q.max_position} - k.min_position < window;
  return causal_full && window_full ? TileKind::Full : TileKind::Partial;
}

// The mask itself, for one pair (partial tiles, and references).
DUET_HOST_DEVICE inline bool attention_visible(int64_t i, int64_t j,
                                               const int32_t* visible_until,
                                               const int32_t* positions, int64_t window) {
  if (j > i || i >= visible_until[j]) return false;
  return window == 0 || int64_t{positions[i]} - positions[j] < window;
}

// Shared by the forward and backward params.
struct AttentionShape {
  int64_t n_tokens = 0;
  int64_t n_q_heads = 0;
  int64_t n_kv_heads = 0;  // n_q_heads is a multiple of it
  int64_t head_dim = 0;
  const int32_t* visible_until = nullptr;  // [n_tokens]: j < visible_until[j] <= n_tokens
  const int32_t* positions = nullptr;      // [n_tokens]; needed only when window > 0
  int64_t window = 0;                      // sliding window in positions; 0 = none
  int64_t tile_q = 64;                     // queries per block
  int64_t tile_k = 64;                     // keys per tile
  bool classify_tiles = true;              // false: every tile Partial (the dense path)

  void validate(const char* op) const {
    using namespace detail;
    require_non_negative(op, "n_tokens", n_tokens);
    if (n_tokens >= (int64_t{1} << 31)) fail("{}: n_tokens ({}) must fit in int32", op, n_tokens);
    require_positive(op, "n_q_heads", n_q_heads);
    require_positive(op, "n_kv_heads", n_kv_heads);
    require_positive(op, "head_dim", head_dim);
    if (n_q_heads % n_kv_heads != 0)
      fail("{}: n_q_heads ({}) must be a multiple of n_kv_heads ({})", op, n_q_heads, n_kv_heads);
    require_data(op, "visible_until", visible_until, n_tokens);
    require_non_negative(op, "window", window);
    if (window > 0) require_data(op, "positions", positions, n_tokens);
    require_positive(op, "tile_q", tile_q);
    require_positive(op, "tile_k", tile_k);
  }
  int64_t q_row() const { return n_q_heads * head_dim; }
  int64_t kv_row() const { return n_kv_heads * head_dim; }
};

template <typename T>
struct AttentionParams : AttentionShape {
  const T* q = nullptr;  // [n_tokens, q_row_stride]: heads [Hq, D] at the start of a row
  const T* k = nullptr;  // [n_tokens, k_row_stride]: [Hkv, D]
  const T* v = nullptr;  // [n_tokens, v_row_stride]: [Hkv, D]
  T* o = nullptr;        // [n_tokens, o_row_stride]: [Hq, D], written
  T* lse = nullptr;      // [n_tokens, n_q_heads], written (saved for the backward)
  int64_t q_row_stride = 0, k_row_stride = 0, v_row_stride = 0, o_row_stride = 0;

  void set_packed_strides() {
    q_row_stride = o_row_stride = q_row();
    k_row_stride = v_row_stride = kv_row();
  }

  void validate() const {
    using namespace detail;
    const char* op = "attention";
    AttentionShape::validate(op);
    require_stride(op, "q_row_stride", q_row_stride, q_row());
    require_stride(op, "k_row_stride", k_row_stride, kv_row());
    require_stride(op, "v_row_stride", v_row_stride, kv_row());
    require_stride(op, "o_row_stride", o_row_stride, q_row());
    require_data(op, "q", q, n_tokens);
    require_data(op, "k", k, n_tokens);
    require_data(op, "v", v, n_tokens);
    require_data(op, "o", o, n_tokens);
    require_data(op, "lse", lse, n_tokens);
  }
};

template <typename T>
struct AttentionBackwardParams : AttentionShape {
  const T* q = nullptr;    // as in the forward
  const T* k = nullptr;
  const T* v = nullptr;
  const T* o = nullptr;    // the forward's output
  const T* lse = nullptr;  // the forward's lse [n_tokens, n_q_heads]
  const T* d_o = nullptr;  // [n_tokens, do_row_stride]: [Hq, D]
  T* dq = nullptr;         // [n_tokens, dq_row_stride]: [Hq, D], written
  T* dk = nullptr;         // [n_tokens, dk_row_stride]: [Hkv, D], written
  T* dv = nullptr;         // [n_tokens, dv_row_stride]: [Hkv, D], written
  int64_t q_row_stride = 0, k_row_stride = 0, v_row_stride = 0, o_row_stride = 0;
  int64_t do_row_stride = 0, dq_row_stride = 0, dk_row_stride = 0, dv_row_stride = 0;

  void set_packed_strides() {
    q_row_stride = o_row_stride = do_row_stride = dq_row_stride = q_row();
    k_row_stride = v_row_stride = dk_row_stride = dv_row_stride = kv_row();
  }

  void validate() const {
    using namespace detail;
    const char* op = "attention backward";
    AttentionShape::validate(op);
    require_stride(op, "q_row_stride", q_row_stride, q_row());
    require_stride(op, "k_row_stride", k_row_stride, kv_row());
    require_stride(op, "v_row_stride", v_row_stride, kv_row());
    require_stride(op, "o_row_stride", o_row_stride, q_row());
    require_stride(op, "do_row_stride", do_row_stride, q_row());
    require_stride(op, "dq_row_stride", dq_row_stride, q_row());
    require_stride(op, "dk_row_stride", dk_row_stride, kv_row());
    require_stride(op, "dv_row_stride", dv_row_stride, kv_row());
    for (auto [name, ptr] : {std::pair<const char*, const void*>{"q", q}, {"k", k}, {"v", v},
                             {"o", o}, {"lse", lse}, {"d_o", d_o}, {"dq", dq}, {"dk", dk},
                             {"dv", dv}})
      require_data(op, name, ptr, n_tokens);
  }
};

namespace cpu {
// Both also check visible_until (j < visible_until[j] <= n_tokens, so every
// query sees itself) and, with a window, positions >= 0.
template <typename T>
void attention_forward(const AttentionParams<T>& p);
template <typename T>
void attention_backward(const AttentionBackwardParams<T>& p);
}  // namespace cpu

}  // namespace duet::backend
