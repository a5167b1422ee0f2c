// Backward, flash-attention-2 style, deterministic (no atomics), in three
// kernels after the forward:
//   delta   D_i = rowsum(dO_i * O_i) per (query, head), fp32, in the workspace
//   dk/dv   one block (4 warps, 16 keys each) per (kv head, key tile of 64):
//           loops over the query heads of its group and the non-skipped query
//           blocks of 64; Sᵀ = K Qᵀ, dPᵀ = V dOᵀ, P = exp(S - lse),
//           dS = P (dP - D), dV += Pᵀ dO, dK += dSᵀ Q, all in registers
//   dq      one block (4 warps, 16 queries each) per (query head, query block
//           of 64): loops over the non-skipped key tiles; S, dP again, dQ += dS K
// Every output element is summed by one warp in a fixed order, so results are
// bitwise reproducible; the price is S and dP computed twice (7 products
// instead of flash-attention's 5 with an atomic dq accumulator). On Hopper the
// dk/dv and dq passes can run as wgmma kernels instead
// (attention_backward_sm90.cu, attention_backward_uses_sm90).
#include "backend/cuda/attention_common.cuh"

#include <cmath>

#include "backend/cuda/attention_backward_sm90.hpp"

namespace duet::backend::cuda {

namespace attn {
namespace {

struct BackwardArgs {
  const bf16 *q, *k, *v, *o, *d_o;
  const float* lse;
  bf16 *dq, *dk, *dv;
  int64_t q_stride, k_stride, v_stride, o_stride, do_stride, dq_stride, dk_stride, dv_stride;
  float* delta;  // [n_tokens][n_q_heads], in the workspace
  int n_q_heads, rep;
  float scale, scale_log2;
  MaskArgs m;
};

constexpr int kBwdThreads = 128, kBlk = 64;  // 4 warps; query blocks and key tiles of 64

template <int D>
constexpr size_t backward_shared_bytes() {
  return sizeof(bf16) * 6 * kBlk * D + sizeof(int32_t) * 6 * kBlk;
}

// One warp per (token, head).
template <int D>
__global__ void delta_kernel(const BackwardArgs a) {
  const int w = blockIdx.x * 8 + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (w >= a.m.n_tokens * a.n_q_heads) return;
  const int i = w / a.n_q_heads, h = w % a.n_q_heads;
  const bf16* o = a.o + i * a.o_stride + h * D;
  const bf16* d_o = a.d_o + i * a.do_stride + h * D;
  float sum = 0.f;
#pragma unroll
  for (int d = 2 * lane; d < D; d += 64) {
    const float2 x = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(o + d));
    const float2 y = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(d_o + d));
    sum += x.x * y.x + x.y * y.y;
  }
#pragma unroll
  for (int off = 16; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
  if (lane == 0) a.delta[w] = sum;
}

template <int D>
__global__ void __launch_bounds__(kBwdThreads, 2) dkdv_kernel(const BackwardArgs a) {
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sK = reinterpret_cast<bf16*>(smem);
  bf16* sV = sK + kBlk * D;
  bf16* sQ = sV + kBlk * D;       // [2][64][D]
  bf16* sdO = sQ + 2 * kBlk * D;  // [2][64][D]
  float* sLse = reinterpret_cast<float*>(sdO + 2 * kBlk * D);  // [2][64]
  float* sDelta = sLse + 2 * kBlk;                             // [2][64]
  int32_t* sPos = reinterpret_cast<int32_t*>(sDelta + 2 * kBlk);  // [2][64]

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int n = a.m.n_tokens, window = a.m.window, hq = a.n_q_heads;
  const int tile = blockIdx.x, kvh = blockIdx.y, k0 = tile * kBlk;
  // Queries that may see this tile: from its first key to its largest visible_until.
  const int qb_first = tile;
  const int qb_last = a.m.classify ? (a.m.stats[tile].max_vu - 1) / kBlk : (n - 1) / kBlk;
  const int n_qb = qb_last - qb_first + 1, items = a.rep * n_qb;
  auto skipped = [&](int it) {
    const int qb = qb_first + it % n_qb;
    return tile_kind(a.m, query_block(a.m, qb * kBlk, kBlk), kBlk, tile) == TileKind::Skip;
  };
  auto next = [&](int it) {
    while (it < items && skipped(it)) ++it;
    return it;
  };
  auto load_item = [&](int it, int stage) {
    const int h = kvh * a.rep + it / n_qb, q0 = (qb_first + it % n_qb) * kBlk;
    load_rows<D, kBlk, kBwdThreads>(sQ + stage * kBlk * D, a.q + h * D, a.q_stride, q0, n, tid);
    load_rows<D, kBlk, kBwdThreads>(sdO + stage * kBlk * D, a.d_o + h * D, a.do_stride, q0, n, tid);
    if (tid < kBlk) load_scalars(sLse + stage * kBlk, a.lse + h, hq, q0, n, tid);
    else load_scalars(sDelta + stage * kBlk, a.delta + h, hq, q0, n, tid - kBlk);
    if (window > 0 && tid < kBlk) load_scalars(sPos + stage * kBlk, a.m.positions, 1, q0, n, tid);
  };

  int it = next(0);
  load_rows<D, kBlk, kBwdThreads>(sK, a.k + kvh * D, a.k_stride, k0, n, tid);
  load_rows<D, kBlk, kBwdThreads>(sV, a.v + kvh * D, a.v_stride, k0, n, tid);
  if (it < items) load_item(it, 0);
  cp_async_commit();

  const KeyRows keys(a.m, k0 + warp * 16 + lane / 4);

  float dk[D / 8][4], dv[D / 8][4];
  zero(dk);
  zero(dv);
  int stage = 0;
  while (it < items) {
    const int it_next = next(it + 1);
    if (it_next < items) load_item(it_next, stage ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();

    const int q0 = (qb_first + it % n_qb) * kBlk;
    const bool partial =
        tile_kind(a.m, query_block(a.m, q0, kBlk), kBlk, tile) == TileKind::Partial;
    const bf16* q = sQ + stage * kBlk * D;
    const bf16* d_o = sdO + stage * kBlk * D;
    const QueryCols cols{sLse + stage * kBlk, 2 * kBlk, q0, lane, window};  // sLse, sDelta, sPos [2][64]
    float s[kBlk / 8][4], dp[kBlk / 8][4];  // transposed: rows keys, columns queries
    zero(s);
    zero(dp);
    gemm_abt<D, kBlk / 8>(s, sK, warp * 16, q, 0, lane);
    gemm_abt<D, kBlk / 8>(dp, sV, warp * 16, d_o, 0, lane);
    cols.probabilities(s, dp, a.scale_log2, partial, keys);
    uint32_t fa[kBlk / 16][4];
    to_a_fragments<kBlk / 8>(fa, s);
    gemm_ab<D, kBlk / 16>(dv, fa, d_o, 0, lane);
    to_a_fragments<kBlk / 8>(fa, dp);
    gemm_ab<D, kBlk / 16>(dk, fa, q, 0, lane);
    __syncthreads();
    stage ^= 1;
    it = it_next;
  }
  store_rows<D>(a.dk + kvh * D, a.dk_stride, dk, k0 + warp * 16, n, lane, a.scale, a.scale);
  store_rows<D>(a.dv + kvh * D, a.dv_stride, dv, k0 + warp * 16, n, lane, 1.f, 1.f);
}

template <int D>
__global__ void __launch_bounds__(kBwdThreads, 2) dq_kernel(const BackwardArgs a) {
  extern __shared__ __align__(128) unsigned char smem[];
  bf16* sQ = reinterpret_cast<bf16*>(smem);
  bf16* sdO = sQ + kBlk * D;
  bf16* sK = sdO + kBlk * D;     // [2][64][D]
  bf16* sV = sK + 2 * kBlk * D;  // [2][64][D]
  int32_t* sVu = reinterpret_cast<int32_t*>(sV + 2 * kBlk * D);  // [2][64]
  int32_t* sPos = sVu + 2 * kBlk;                                 // [2][64]

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int n = a.m.n_tokens, window = a.m.window, hq = a.n_q_heads;
  const int block = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, kvh = h / a.rep;
  const int q0 = block * kBlk;
  const QueryBlock qb = query_block(a.m, q0, kBlk);
  const int first = a.m.classify ? a.m.stats[block].first_tile : 0, last = block;
  auto next = [&](int t) {
    while (t <= last && tile_kind(a.m, qb, kBlk, t) == TileKind::Skip) ++t;
    return t;
  };
  auto load_tile = [&](int t, int stage) {
    load_rows<D, kBlk, kBwdThreads>(sK + stage * kBlk * D, a.k + kvh * D, a.k_stride, t * kBlk, n, tid);
    load_rows<D, kBlk, kBwdThreads>(sV + stage * kBlk * D, a.v + kvh * D, a.v_stride, t * kBlk, n, tid);
    if (tid < kBlk) load_scalars(sVu + stage * kBlk, a.m.visible_until, 1, t * kBlk, n, tid);
    else if (window > 0) load_scalars(sPos + stage * kBlk, a.m.positions, 1, t * kBlk, n, tid - kBlk);
  };

  int t = next(first);
  load_rows<D, kBlk, kBwdThreads>(sQ, a.q + h * D, a.q_stride, q0, n, tid);
  load_rows<D, kBlk, kBwdThreads>(sdO, a.d_o + h * D, a.do_stride, q0, n, tid);
  load_tile(t, 0);
  cp_async_commit();

  const int row0 = q0 + warp * 16 + lane / 4;
  const int rows[2] = {row0, row0 + 8};
  float lse_log2[2], delta[2];
  int pos[2];
  for (int r = 0; r < 2; ++r) {
    const bool ok = rows[r] < n;
    lse_log2[r] = ok ? a.lse[static_cast<int64_t>(rows[r]) * hq + h] * kLog2e : 0.f;
    delta[r] = ok ? a.delta[static_cast<int64_t>(rows[r]) * hq + h] : 0.f;
    pos[r] = ok && window > 0 ? a.m.positions[rows[r]] : 0;
  }

  float dq[D / 8][4];
  zero(dq);
  int stage = 0;
  while (t <= last) {
    const int t_next = next(t + 1);
    if (t_next <= last) load_tile(t_next, stage ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();

    const bool partial = tile_kind(a.m, qb, kBlk, t) == TileKind::Partial;
    const bf16* k = sK + stage * kBlk * D;
    const int32_t* vu = sVu + stage * kBlk;
    const int32_t* kpos = sPos + stage * kBlk;
    float s[kBlk / 8][4], dp[kBlk / 8][4];
    zero(s);
    zero(dp);
    gemm_abt<D, kBlk / 8>(s, sQ, warp * 16, k, 0, lane);
    gemm_abt<D, kBlk / 8>(dp, sdO, warp * 16, sV + stage * kBlk * D, 0, lane);
    probabilities(
        s, dp, a.scale_log2, partial, [&](int, int e) { return lse_log2[e / 2]; },
        [&](int nt, int e) {
          const int c = nt * 8 + 2 * (lane % 4) + (e & 1);
          return !visible(rows[e / 2], t * kBlk + c, vu[c], pos[e / 2], kpos[c], window);
        },
        [&](int, int e) { return delta[e / 2]; });
    uint32_t fa[kBlk / 16][4];
    to_a_fragments<kBlk / 8>(fa, dp);
    gemm_ab<D, kBlk / 16>(dq, fa, k, 0, lane);
    __syncthreads();
    stage ^= 1;
    t = t_next;
  }
  store_rows<D>(a.dq + h * D, a.dq_stride, dq, q0 + warp * 16, n, lane, a.scale, a.scale);
}

template <int D>
void launch_delta(const BackwardArgs& args, int n_tokens, int n_q_heads, cudaStream_t stream) {
  delta_kernel<D><<<grid_for(int64_t{n_tokens} * n_q_heads, 8), 256, 0, stream>>>(args);
  check_launch("attention backward (delta)");
}

template <int D>
void launch_backward(const BackwardArgs& args, int n_tokens, int n_q_heads, int n_kv_heads,
                     cudaStream_t stream) {
  constexpr size_t bytes = backward_shared_bytes<D>();
  static const bool once = (allow_shared(dkdv_kernel<D>, bytes), allow_shared(dq_kernel<D>, bytes), true);
  (void)once;
  const int blocks = (n_tokens + kBlk - 1) / kBlk;
  dkdv_kernel<D><<<dim3(blocks, n_kv_heads), kBwdThreads, bytes, stream>>>(args);
  check_launch("attention backward (dk, dv)");
  dq_kernel<D><<<dim3(blocks, n_q_heads), kBwdThreads, bytes, stream>>>(args);
  check_launch("attention backward (dq)");
}

}  // namespace
}  // namespace attn

void attention_backward(const AttentionBackward& p, cudaStream_t stream) {
  const char* op = "attention backward (CUDA)";
  attention_check_supported(p);
  using attn::check_rows;
  attn::check_qkvo(op, p, p.q, p.q_row_stride, p.k, p.k_row_stride, p.v, p.v_row_stride, p.o,
                   p.o_row_stride);
  check_rows(op, "d_o", p.d_o, p.do_row_stride, p.q_row());
  check_rows(op, "dq", p.dq, p.dq_row_stride, p.q_row());
  check_rows(op, "dk", p.dk, p.dk_row_stride, p.kv_row());
  check_rows(op, "dv", p.dv, p.dv_row_stride, p.kv_row());
  for (auto [name, ptr] : {std::pair<const char*, const void*>{"d_o", p.d_o}, {"dq", p.dq},
                           {"dk", p.dk}, {"dv", p.dv}, {"lse", p.lse}, {"workspace", p.workspace}})
    backend::detail::require_data(op, name, ptr, p.n_tokens);
  if (p.n_tokens == 0) return;
  const double scale = 1.0 / std::sqrt(static_cast<double>(p.head_dim));
  attn::BackwardArgs a{p.q, p.k, p.v, p.o, p.d_o, p.lse, p.dq, p.dk, p.dv,
                       p.q_row_stride, p.k_row_stride, p.v_row_stride, p.o_row_stride,
                       p.do_row_stride, p.dq_row_stride, p.dk_row_stride, p.dv_row_stride,
                       reinterpret_cast<float*>(static_cast<char*>(p.workspace) +
                                                attn::PlanLayout(p).delta_offset),
                       static_cast<int>(p.n_q_heads), static_cast<int>(p.n_q_heads / p.n_kv_heads),
                       static_cast<float>(scale), static_cast<float>(scale * attn::kLog2e),
                       attn::mask_args(p, p.workspace)};
  const int n = static_cast<int>(p.n_tokens);
  const int hq = static_cast<int>(p.n_q_heads), hkv = static_cast<int>(p.n_kv_heads);
  if (p.head_dim == 64) attn::launch_delta<64>(a, n, hq, stream);
  else attn::launch_delta<128>(a, n, hq, stream);
  // The Hopper passes (attention_backward_sm90.cu) where they are selected.
  if (attention_backward_uses_sm90(p.head_dim)) return attention_backward_sm90(p, a.delta, stream);
  if (p.head_dim == 64) attn::launch_backward<64>(a, n, hq, hkv, stream);
  else attn::launch_backward<128>(a, n, hq, hkv, stream);
}

}  // namespace duet::backend::cuda
