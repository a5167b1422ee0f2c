// Forward: one block of 8 warps per (query head, 128 queries); each warp owns
// 16 query rows. Key tiles of 64 in the planned range [first, last] are
// classified with classify_tile: Skip tiles are not even loaded, Full tiles
// run without a mask, Partial tiles mask per element. K/V tiles are double
// buffered with cp.async (the next non-skipped tile loads while this one is
// computed). S = Q Kᵀ and O += P V with mma.sync m16n8k16 (bf16 in, fp32
// accumulators); online softmax in fp32 in the log2 domain.
#include "backend/cuda/attention_common.cuh"

#include <cmath>

#include "backend/cuda/attention_forward_sm90.hpp"

namespace duet::backend::cuda {

namespace attn {
namespace {

struct ForwardArgs {
  const bf16 *q, *k, *v;
  bf16* o;
  float* lse;
  int64_t q_stride, k_stride, v_stride, o_stride;
  int n_q_heads, rep;
  float scale_log2;  // softmax scale * log2(e)
  MaskArgs m;
};

constexpr int kFwdRows = 128, kFwdThreads = 256, kTileK = 64;
// Blocks per multiprocessor the forward is compiled for (tuning knobs,
// -DDUET_ATTN_FWD128_MIN_BLOCKS=1 ...). hd128 at 2 is capped at 128 registers
// (76 spilled bytes) for twice the warps: 14-19 % faster on the H200 than at 1
// (211 registers, no spill). hd64 fits 128 registers at 2; at 3 it spills 188
// bytes and ran 7-12 % slower. docs/attention-cuda.md has the numbers.
#ifndef DUET_ATTN_FWD128_MIN_BLOCKS
#define DUET_ATTN_FWD128_MIN_BLOCKS 2
#endif
#ifndef DUET_ATTN_FWD64_MIN_BLOCKS
#define DUET_ATTN_FWD64_MIN_BLOCKS 2
#endif

template <int D>
constexpr size_t forward_shared_bytes() {
  return sizeof(bf16) * (kFwdRows * D + 4 * kTileK * D) + sizeof(int32_t) * 4 * kTileK;
}

constexpr int kFwdMinBlocks128 = DUET_ATTN_FWD128_MIN_BLOCKS, kFwdMinBlocks64 = DUET_ATTN_FWD64_MIN_BLOCKS;

template <int D>
__global__ void __launch_bounds__(kFwdThreads, D == 128 ? kFwdMinBlocks128 : kFwdMinBlocks64)
    forward_kernel(const ForwardArgs a) {
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sQ = reinterpret_cast<bf16*>(smem);
  bf16* sK = sQ + kFwdRows * D;   // [2][64][D]
  bf16* sV = sK + 2 * kTileK * D;  // [2][64][D]
  int32_t* sVu = reinterpret_cast<int32_t*>(sV + 2 * kTileK * D);  // [2][64]
  int32_t* sPos = sVu + 2 * kTileK;                                 // [2][64]

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int n = a.m.n_tokens, window = a.m.window;
  const int block = gridDim.x - 1 - blockIdx.x;  // the longest rows (last blocks) first
  const int h = blockIdx.y, kvh = h / a.rep, q0 = block * kFwdRows;
  const QueryBlock qb = query_block(a.m, q0, kFwdRows);
  const int g0 = q0 / kGranule, g1 = (qb.end - 1) / kGranule;
  const int first = a.m.classify ? min(a.m.stats[g0].first_tile, a.m.stats[g1].first_tile) : 0;
  const int last = g1;
  auto next = [&](int t) {
    while (t <= last && tile_kind(a.m, qb, kFwdRows, t) == TileKind::Skip) ++t;
    return t;
  };
  const bf16* gk = a.k + kvh * D;
  const bf16* gv = a.v + kvh * D;
  auto load_tile = [&](int t, int stage) {
    load_rows<D, kTileK, kFwdThreads>(sK + stage * kTileK * D, gk, a.k_stride, t * kTileK, n, tid);
    load_rows<D, kTileK, kFwdThreads>(sV + stage * kTileK * D, gv, a.v_stride, t * kTileK, n, tid);
    if (tid < kTileK)
      load_scalars(sVu + stage * kTileK, a.m.visible_until, 1, t * kTileK, n, tid);
    else if (tid < 2 * kTileK && window > 0)
      load_scalars(sPos + stage * kTileK, a.m.positions, 1, t * kTileK, n, tid - kTileK);
  };

  int t = next(first);  // never past last: the diagonal tile is visible
  load_rows<D, kFwdRows, kFwdThreads>(sQ, a.q + h * D, a.q_stride, q0, n, tid);
  load_tile(t, 0);
  cp_async_commit();

  const int row0 = q0 + warp * 16 + lane / 4;
  const int rows[2] = {row0, row0 + 8};
  int pos[2] = {0, 0};
  if (window > 0)
    for (int r = 0; r < 2; ++r) pos[r] = rows[r] < n ? a.m.positions[rows[r]] : 0;

  float o[D / 8][4];
  zero(o);
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};
  int stage = 0;
  while (t <= last) {
    const int t_next = next(t + 1);
    if (t_next <= last) load_tile(t_next, stage ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();

    const bool partial = tile_kind(a.m, qb, kFwdRows, t) == TileKind::Partial;
    float s[kTileK / 8][4];
    zero(s);
    gemm_abt<D, kTileK / 8>(s, sQ, warp * 16, sK + stage * kTileK * D, 0, lane);

    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < kTileK / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[nt][e] * a.scale_log2;
        if (partial) {
          const int c = nt * 8 + 2 * (lane % 4) + (e & 1);
          if (!visible(rows[e / 2], t * kTileK + c, sVu[stage * kTileK + c], pos[e / 2],
                       sPos[stage * kTileK + c], window))
            x = -INFINITY;
        }
        s[nt][e] = x;
        mx[e / 2] = fmaxf(mx[e / 2], x);
      }
    float base[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      const float m_new = fmaxf(m_run[r], mx[r]);
      base[r] = m_new == -INFINITY ? 0.f : m_new;  // a row that sees nothing yet
      const float alpha = exp2f(m_run[r] - base[r]);
      m_run[r] = m_new;
      l_run[r] *= alpha;
#pragma unroll
      for (int nt = 0; nt < D / 8; ++nt) {
        o[nt][2 * r] *= alpha;
        o[nt][2 * r + 1] *= alpha;
      }
    }
#pragma unroll
    for (int nt = 0; nt < kTileK / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float p = exp2f(s[nt][e] - base[e / 2]);
        s[nt][e] = p;
        l_run[e / 2] += p;
      }
    uint32_t pa[kTileK / 16][4];
    to_a_fragments<kTileK / 8>(pa, s);
    gemm_ab<D, kTileK / 16>(o, pa, sV + stage * kTileK * D, 0, lane);
    __syncthreads();
    stage ^= 1;
    t = t_next;
  }

  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 1);
    l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 2);
    inv[r] = l_run[r] > 0.f ? 1.f / l_run[r] : 0.f;
    if (lane % 4 == 0 && rows[r] < n)
      a.lse[static_cast<int64_t>(rows[r]) * a.n_q_heads + h] = (m_run[r] + log2f(l_run[r])) * kLn2;
  }
  store_rows<D>(a.o + h * D, a.o_stride, o, q0 + warp * 16, n, lane, inv[0], inv[1]);
}

template <int D>
void launch_forward(const ForwardArgs& args, int n_tokens, int n_q_heads, cudaStream_t stream) {
  constexpr size_t bytes = forward_shared_bytes<D>();
  static const bool once = (allow_shared(forward_kernel<D>, bytes), true);
  (void)once;
  const dim3 grid((n_tokens + kFwdRows - 1) / kFwdRows, n_q_heads);
  forward_kernel<D><<<grid, kFwdThreads, bytes, stream>>>(args);
  check_launch("attention forward");
}

}  // namespace
}  // namespace attn

void attention_forward(const AttentionForward& p, cudaStream_t stream) {
  // The Hopper kernel (attention_forward_sm90.cu) where it is the faster one.
  if (attention_forward_uses_sm90(p.head_dim)) return attention_forward_sm90(p, stream);
  const char* op = "attention forward (CUDA)";
  attention_check_supported(p);
  attn::check_qkvo(op, p, p.q, p.q_row_stride, p.k, p.k_row_stride, p.v, p.v_row_stride, p.o,
                   p.o_row_stride);
  backend::detail::require_data(op, "lse", p.lse, p.n_tokens);
  backend::detail::require_data(op, "workspace", p.workspace, p.n_tokens);
  if (p.n_tokens == 0) return;
  attn::ForwardArgs a{p.q, p.k, p.v, p.o, p.lse,
                      p.q_row_stride, p.k_row_stride, p.v_row_stride, p.o_row_stride,
                      static_cast<int>(p.n_q_heads), static_cast<int>(p.n_q_heads / p.n_kv_heads),
                      static_cast<float>(attn::kLog2e / std::sqrt(static_cast<double>(p.head_dim))),
                      attn::mask_args(p, p.workspace)};
  const int n = static_cast<int>(p.n_tokens), hq = static_cast<int>(p.n_q_heads);
  if (p.head_dim == 64) attn::launch_forward<64>(a, n, hq, stream);
  else attn::launch_forward<128>(a, n, hq, stream);
}

}  // namespace duet::backend::cuda
