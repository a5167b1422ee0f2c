#pragma once
// Private to the attention kernels (attention_*.cu): the plan's layout in the
// workspace, the tile classification on the device, and the warp-level
// building blocks (cp.async tile loads into XOR-swizzled shared memory,
// ldmatrix, mma.sync m16n8k16 bf16 with fp32 accumulators).
//
// Included first by every attention .cu file: nvcc 13's front end cannot
// evaluate fmt 9's consteval format strings, and fmt turns its constexpr off
// under nvcc, which gcc then rejects; these two make fmt (pulled in by
// util/error.hpp) compile under nvcc. Format strings are then checked at run
// time only in these files.
#ifndef FMT_USE_CONSTEXPR
#define FMT_USE_CONSTEXPR 1
#endif
#ifndef FMT_CONSTEVAL
#define FMT_CONSTEVAL
#endif

#include <cuda_bf16.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "backend/attention.hpp"
#include "backend/cuda/attention.hpp"

namespace duet::backend::cuda::attn {

// The plan's granule: key tiles and query blocks of 64 tokens. The kernels'
// blocks are one granule (backward) or two (forward, 128 queries).
constexpr int kGranule = 64;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Per granule of 64 tokens: the key tile's visible_until range, the positions'
// range (0 without a window), and, seen as a query block, the first and last
// key tile that classify_tile does not skip.
struct GranuleStats {
  int32_t min_vu, max_vu, min_pos, max_pos;
  int32_t first_tile, last_tile, pad0, pad1;
};

inline int64_t n_granules(int64_t n_tokens) { return (n_tokens + kGranule - 1) / kGranule; }
inline size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

// Workspace: [GranuleStats x n_granules][float delta x n_tokens x n_q_heads]
// [int32 x 2: the Hopper forward's work counter (next item, CTAs done), zeroed
// by the plan, left zero by every forward].
struct PlanLayout {
  size_t stats_bytes = 0, delta_offset = 0, counter_offset = 0, total = 0;
  explicit PlanLayout(const AttentionShape& s) {
    stats_bytes = align_up(sizeof(GranuleStats) * static_cast<size_t>(n_granules(s.n_tokens)), 256);
    delta_offset = stats_bytes;
    counter_offset = delta_offset + align_up(sizeof(float) * static_cast<size_t>(s.n_tokens * s.n_q_heads), 256);
    total = counter_offset + 256;
  }
};

// What every kernel needs to classify and mask.
struct MaskArgs {
  const int32_t* visible_until;
  const int32_t* positions;  // null without a window
  const GranuleStats* stats;
  int n_tokens;
  int window;  // 0 = none
  bool classify;
};

__device__ inline QueryBlock query_block(const MaskArgs& m, int begin, int rows) {
  const int g0 = begin / kGranule, g1 = min(begin + rows, m.n_tokens) - 1;
  QueryBlock q{begin, min(begin + rows, m.n_tokens), m.stats[g0].min_pos, m.stats[g0].max_pos};
  for (int g = g0 + 1; g <= g1 / kGranule; ++g) {
    q.min_position = min(q.min_position, m.stats[g].min_pos);
    q.max_position = max(q.max_position, m.stats[g].max_pos);
  }
  return q;
}

// classify_tile for (q, key tile t), the CPU's rule. Blocks or tiles cut by
// the end of the row are Partial: the per-element mask also hides the
// zero-filled rows past n_tokens. Unclassified runs treat every tile Partial.
__device__ inline TileKind tile_kind(const MaskArgs& m, const QueryBlock& q, int q_rows, int t) {
  if (!m.classify) return TileKind::Partial;
  const GranuleStats& s = m.stats[t];
  const KeyTile k{t * kGranule, min((t + 1) * kGranule, m.n_tokens), s.min_vu, s.max_vu, s.min_pos,
                  s.max_pos};
  const TileKind kind = classify_tile(q, k, m.window);
  if (kind == TileKind::Full && (k.end - k.begin < kGranule || q.end - q.begin < q_rows))
    return TileKind::Partial;
  return kind;
}

// Key j visible to query i; j's visible_until and position come from shared
// memory (0 past the row's end, which hides those keys).
__device__ inline bool visible(int i, int j, int vu_j, int pos_i, int pos_j, int window) {
  return j <= i && i < vu_j && (window == 0 || pos_i - pos_j < window);
}

// ---- shared memory tiles: rows of D bf16, 16-byte chunks XOR-swizzled by row
// so that ldmatrix's 8 row addresses hit 8 different bank groups.
template <int D>
__device__ inline int swz(int row, int chunk) {
  return row * D + ((chunk ^ (row & 7)) << 3);
}

__device__ inline uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ inline void cp_async16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ inline void cp_async4(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src),
               "r"(valid ? 4 : 0));
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// ROWS rows of D bf16 starting at token row0 (rows past n are zero-filled).
// g points at the head's first element of token 0.
template <int D, int ROWS, int THREADS>
__device__ inline void load_rows(bf16* s, const bf16* g, int64_t stride, int row0, int n, int tid) {
  constexpr int kChunks = D / 8;
#pragma unroll
  for (int c = tid; c < ROWS * kChunks; c += THREADS) {
    const int r = c / kChunks, ch = c % kChunks, row = row0 + r;
    const bool ok = row < n;
    cp_async16(smem_u32(s + swz<D>(r, ch)), g + (ok ? row : 0) * stride + ch * 8, ok);
  }
}

// 64 int32 (or float) per token from a strided array (zero past n), threads [0, 64).
__device__ inline void load_scalars(void* s, const void* g, int64_t stride, int row0, int n, int t) {
  const bool ok = row0 + t < n;
  cp_async4(smem_u32(static_cast<uint32_t*>(s) + t),
            static_cast<const uint32_t*>(g) + (ok ? (row0 + t) * stride : 0), ok);
}

__device__ inline void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ inline void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// c += a b: a 16x16 (row), b 16x8 (col), bf16 in, fp32 accumulators.
__device__ inline void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ inline uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// Accumulator fragment layout (m16n8): thread (g = lane / 4, t = lane % 4)
// holds c[0], c[1] at row g, columns 2t, 2t+1 and c[2], c[3] at row g + 8.

// acc (16 x 8 NT) += A (16 rows of sA from a_row, K = D) * B^T, B = NT*8 rows
// of sB from b_row (K = D): both operands stored [row][D] ("A Bᵀ").
template <int D, int NT>
__device__ inline void gemm_abt(float (&acc)[NT][4], const bf16* sA, int a_row, const bf16* sB,
                                int b_row, int lane) {
  static_assert(NT % 2 == 0);
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    uint32_t a[4];
    ldmatrix_x4(a, smem_u32(sA + swz<D>(a_row + (lane & 7) + ((lane >> 3) & 1) * 8,
                                        kk * 2 + (lane >> 4))));
#pragma unroll
    for (int n = 0; n < NT; n += 2) {
      uint32_t b[4];
      ldmatrix_x4(b, smem_u32(sB + swz<D>(b_row + n * 8 + (lane & 7) + (lane >> 4) * 8,
                                          kk * 2 + ((lane >> 3) & 1))));
      mma(acc[n], a, b[0], b[1]);
      mma(acc[n + 1], a, b[2], b[3]);
    }
  }
}

// acc (16 x D) += A (16 x 16 KK, bf16 fragments in registers) * B, B = 16 KK
// rows of sB from b_row, stored [row][D] ("A B").
template <int D, int KK>
__device__ inline void gemm_ab(float (&acc)[D / 8][4], const uint32_t (&a)[KK][4], const bf16* sB,
                               int b_row, int lane) {
#pragma unroll
  for (int kk = 0; kk < KK; ++kk)
#pragma unroll
    for (int n = 0; n < D / 8; n += 2) {
      uint32_t b[4];
      ldmatrix_x4_trans(b, smem_u32(sB + swz<D>(b_row + kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8,
                                                n + (lane >> 4))));
      mma(acc[n], a[kk], b[0], b[1]);
      mma(acc[n + 1], a[kk], b[2], b[3]);
    }
}

// Accumulators (16 x 8 NT) as bf16 A fragments (16 x 16 NT/2).
template <int NT>
__device__ inline void to_a_fragments(uint32_t (&a)[NT / 2][4], const float (&c)[NT][4]) {
#pragma unroll
  for (int kk = 0; kk < NT / 2; ++kk) {
    a[kk][0] = pack_bf16(c[2 * kk][0], c[2 * kk][1]);
    a[kk][1] = pack_bf16(c[2 * kk][2], c[2 * kk][3]);
    a[kk][2] = pack_bf16(c[2 * kk + 1][0], c[2 * kk + 1][1]);
    a[kk][3] = pack_bf16(c[2 * kk + 1][2], c[2 * kk + 1][3]);
  }
}

template <int N>
__device__ inline void zero(float (&c)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i) c[i][0] = c[i][1] = c[i][2] = c[i][3] = 0.f;
}

// 2^x with results below 2^-126 flushed to zero: one MUFU.EX2 (exp2f wraps it
// in a range fix-up for denormal results, three more instructions). Exact 0
// at -inf, which is how masked scores become P = 0.
__device__ inline float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// Masked scores of a Partial tile to -inf (so that exp2 gives exactly 0), in a
// pass of its own under the caller's warp-uniform branch: inside the
// exponent's loop the compiler if-converted the mask and ran it on every tile.
template <int NT, typename Hidden>
__device__ inline void mask_scores(float (&s)[NT][4], bool partial, Hidden hidden) {
  if (!partial) return;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (hidden(nt, e)) s[nt][e] = -INFINITY;
}

// The backward's P = 2^(s·scale_log2 - lse_log2) (fp32: one FFMA and one
// MUFU.EX2) of an accumulator (16 rows x 8 NT columns per warp, mma.sync's C
// layout, which is also wgmma's per warp) in place of the raw scores s;
// hidden(nt, e) masks (Partial tiles only), lse_log2(nt, e) is the query's
// statistic of element e of n-tile nt. Shared by the mma.sync and the Hopper
// backwards, whose P are then bitwise equal.
template <int NT, typename Lse, typename Hidden>
__device__ inline void probabilities(float (&s)[NT][4], float scale_log2, bool partial, Lse lse_log2,
                                     Hidden hidden) {
  mask_scores(s, partial, hidden);
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) s[nt][e] = exp2_ftz(fmaf(s[nt][e], scale_log2, -lse_log2(nt, e)));
}

// dS = P (dP - D) in place of dp, P from probabilities(), delta(nt, e) the
// query's D_i.
template <int NT, typename Delta>
__device__ inline void score_grads(const float (&p)[NT][4], float (&dp)[NT][4], Delta delta) {
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) dp[nt][e] = p[nt][e] * (dp[nt][e] - delta(nt, e));
}

// Both in one sweep (the mma.sync kernels: fewer registers live at once).
template <int NT, typename Lse, typename Hidden, typename Delta>
__device__ inline void probabilities(float (&s)[NT][4], float (&dp)[NT][4], float scale_log2, bool partial,
                                     Lse lse_log2, Hidden hidden, Delta delta) {
  mask_scores(s, partial, hidden);
#pragma unroll
  for (int nt = 0; nt < NT; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float p = exp2_ftz(fmaf(s[nt][e], scale_log2, -lse_log2(nt, e)));
      s[nt][e] = p;
      dp[nt][e] = p * (dp[nt][e] - delta(nt, e));
    }
}

// The two key rows of a thread in a transposed accumulator (rows keys, this
// warp's key0 = first row + lane / 4 and key0 + 8): their visible_until (0
// past the row's end, which hides them) and positions.
struct KeyRows {
  int key[2], vu[2], pos[2];
  __device__ KeyRows(const MaskArgs& m, int key0) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      key[r] = key0 + 8 * r;
      const bool ok = key[r] < m.n_tokens;
      vu[r] = ok ? m.visible_until[key[r]] : 0;
      pos[r] = ok && m.window > 0 ? m.positions[key[r]] : 0;
    }
  }
};

// The columns of the dK/dV passes' transposed pair Sᵀ, dPᵀ (rows: KeyRows):
// the queries q0 + c, whose lse, D_i and positions are stats[c],
// stats[stride + c], stats[2 stride + c] (shared memory, as floats / int32).
struct QueryCols {
  const float* stats;
  int stride, q0, lane, window;
  __device__ int col(int nt, int e) const { return nt * 8 + 2 * (lane % 4) + (e & 1); }
  // The two columns of a thread in n-tile nt are adjacent: one 8-byte load
  // (stats and stride keep them 8-byte aligned).
  __device__ float pick(const float* p, int nt, int e) const {
    const float2 v = reinterpret_cast<const float2*>(p)[nt * 4 + lane % 4];
    return e & 1 ? v.y : v.x;
  }
  __device__ float lse_log2(int nt, int e) const { return pick(stats, nt, e) * kLog2e; }
  __device__ float delta(int nt, int e) const { return pick(stats + stride, nt, e); }
  __device__ bool hidden(int nt, int e, const KeyRows& keys) const {
    const int c = col(nt, e), r = e / 2;
    const int pos = reinterpret_cast<const int32_t*>(stats)[2 * stride + c];
    return !visible(q0 + c, keys.key[r], keys.vu[r], pos, keys.pos[r], window);
  }
  // Pᵀ in place of st; dSᵀ in place of dpt (from pt); both in one sweep.
  template <int NT>
  __device__ void probabilities(float (&st)[NT][4], float scale_log2, bool partial, const KeyRows& keys) const {
    attn::probabilities(
        st, scale_log2, partial, [&](int nt, int e) { return lse_log2(nt, e); },
        [&](int nt, int e) { return hidden(nt, e, keys); });
  }
  template <int NT>
  __device__ void score_grads(const float (&pt)[NT][4], float (&dpt)[NT][4]) const {
    attn::score_grads(pt, dpt, [&](int nt, int e) { return delta(nt, e); });
  }
  template <int NT>
  __device__ void probabilities(float (&st)[NT][4], float (&dpt)[NT][4], float scale_log2, bool partial,
                                const KeyRows& keys) const {
    attn::probabilities(
        st, dpt, scale_log2, partial, [&](int nt, int e) { return lse_log2(nt, e); },
        [&](int nt, int e) { return hidden(nt, e, keys); }, [&](int nt, int e) { return delta(nt, e); });
  }
};

// Rows of a 16 x D accumulator (this warp's rows row0 + g and row0 + g + 8)
// to global bf16, times `scale`; rows at or past n are dropped.
template <int D>
__device__ inline void store_rows(bf16* g, int64_t stride, const float (&acc)[D / 8][4], int row0,
                                  int n, int lane, float scale_lo, float scale_hi) {
  const int r0 = row0 + lane / 4, c0 = 2 * (lane % 4);
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int r = r0 + half * 8;
    if (r >= n) continue;
    const float sc = half ? scale_hi : scale_lo;
    bf16* dst = g + static_cast<int64_t>(r) * stride + c0;
#pragma unroll
    for (int nt = 0; nt < D / 8; ++nt)
      *reinterpret_cast<__nv_bfloat162*>(dst + nt * 8) =
          __floats2bfloat162_rn(acc[nt][2 * half] * sc, acc[nt][2 * half + 1] * sc);
  }
}

// Host: a q/k/v/o-like operand (16-byte aligned rows, stride a multiple of 8
// elements, covering `row`); the MaskArgs of a planned workspace.
void check_rows(const char* op, const char* name, const void* data, int64_t stride, int64_t row);
// check_rows for q, k, v and o (the forward's output) of both directions.
void check_qkvo(const char* op, const AttentionShape& s, const void* q, int64_t q_stride,
                const void* k, int64_t k_stride, const void* v, int64_t v_stride, const void* o,
                int64_t o_stride);
MaskArgs mask_args(const AttentionShape& s, void* workspace);

// Host: the dynamic shared memory a kernel needs, raised once per kernel.
template <typename Kernel>
void allow_shared(Kernel kernel, size_t bytes) {
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(bytes)),
        "attention: cudaFuncSetAttribute");
}

}  // namespace duet::backend::cuda::attn
