// Hopper backward (sm_90a): the mma.sync backward's two deterministic passes
// (attention_backward.cu) with the Hopper forward's structure: one CTA of
// three warpgroups, warpgroup 0 the producer (tensor copies and cp.async into
// a ring of 128-byte-swizzled stages completing on mbarriers), warpgroups 1
// and 2 consumers of 64 rows each with wgmma products and fp32 accumulators.
//   dK/dV  one CTA per (kv head, 128 keys): K and V loaded once; steps over
//          the query heads of the group and their non-skipped query blocks of
//          64 (Q and dO by TMA, lse, D_i, positions per stage; 4 stages). Per
//          step and consumer (64 keys), the two consumers taking turns to
//          issue: Sᵀ = K Qᵀ and dPᵀ = V dOᵀ (m64n64, both operands from shared
//          memory, K-major), Pᵀ = exp2(Sᵀ·scale·log2 e − lse·log2 e), dSᵀ =
//          Pᵀ (dPᵀ − D), then dV += Pᵀ dO and dK += dSᵀ Q (m64nD, A = Pᵀ /
//          dSᵀ rounded to bf16 in registers, B = dO / Q N-major).
//   dQ     one CTA per (query head, 128 queries), the forward's key-tile
//          stream (128 keys per step; Q, dO and the rows' lse, D_i,
//          positions loaded once by cp.async): as the forward's, two producer
//          warps apart, warp 0 K (TMA) with the keys' visible_until /
//          positions (cp.async) and the posted tiles, warp 1 V (TMA), each in
//          its own ring of 2 stages, so that K never waits behind V.
//          S = Q Kᵀ, dP = dO Vᵀ (m64n64 per half of 64 keys), dS = P (dP − D),
//          dQ += dS K (K N-major); V goes back once the last dP is in, K
//          after the last dQ product.
// Every output element is summed by one thread in a fixed order (steps in
// order, no atomics): bitwise reproducible, and Skip tiles (never loaded)
// would only have added exact zeros, so classified == unclassified.
#include "backend/cuda/attention_sm90.cuh"

#include <cmath>

#include "backend/cuda/attention_backward_sm90.hpp"
#include "backend/cuda/attention_forward_sm90.hpp"

namespace duet::backend::cuda {

namespace attn::sm90 {
namespace {

constexpr int kBlock = 128;  // keys per dK/dV CTA, queries per dQ CTA, keys per dQ step
constexpr int kQStep = 64;   // queries per dK/dV step
constexpr int kDkdvStages = 4, kDqStages = 2;
constexpr int kThreads = 384;
constexpr int kConsumers = 256;
// setmaxnreg: producer and consumer registers, 128·P + 256·C = 384·168 (the
// launch's). dK/dV 24 / 240 (at 40 / 232 its wgmma are serialised, C7512);
// dQ 40 / 232: its two producer warps (each classifying tiles and issuing
// tensor copies) spill at 24 (16 bytes at hd128), its consumers fit 232.
constexpr int kProducerRegs = 24, kConsumerRegs = 240;
constexpr int kDqProducerRegs = 40, kDqConsumerRegs = 232;
static_assert(128 * kProducerRegs + 256 * kConsumerRegs == 384 * 168 &&
              128 * kDqProducerRegs + 256 * kDqConsumerRegs == 384 * 168);

struct Args {
  CUtensorMap q_map, do_map;  // Q and dO in boxes of 64 columns x 64 queries (tile_map; dK/dV)
  CUtensorMap k_map, v_map;   // K and V in boxes of 64 columns x 128 keys (dQ)
  const bf16 *q, *k, *v, *d_o;
  const float *lse, *delta;
  bf16 *dq, *dk, *dv;
  int64_t q_stride, k_stride, v_stride, do_stride, dq_stride, dk_stride, dv_stride;
  int n_q_heads, rep;
  float scale, scale_log2;
  MaskArgs m;
};

// dK/dV: once K, V [128 keys] and the keys' visible_until, positions; per
// stage Q (a), dO (b) [64 queries], lse, D_i and positions [64].
template <int D>
using DkdvSmem = Layout<D, 2, kBlock, kQStep, kDkdvStages, 3, 2>;
// dQ: once Q, dO [128 queries] and their lse, D_i, positions; per stage K
// (a) with the keys' visible_until and positions [128], and V (b) [128 keys],
// the two rings apart (full_a / empty, full_b / empty_b). (The queries'
// statistics are read from shared memory at every step rather than held in
// registers: the hd128 consumers have none to spare.)
template <int D>
using DqSmem = Layout<D, 2, kBlock, kBlock, kDqStages, 2, 3>;

template <int D>
__global__ void __launch_bounds__(kThreads, 1) dkdv_sm90_kernel(const __grid_constant__ Args a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using L = DkdvSmem<D>;
  // Steps posted to the consumers; full_b completes with the 128 producer
  // threads' cp.async (D_i) and thread 0's arrival for dO's tensor copy.
  const Cta<L, kDkdvStages> cta(kConsumers, 129, 129);
  const uint32_t base = cta.base;
  unsigned char* smem = cta.smem;
  const Ring<kDkdvStages>& ring = cta.ring;

  const int tid = threadIdx.x, wg = tid / 128;
  const int n = a.m.n_tokens, window = a.m.window, hq = a.n_q_heads;
  // Key tiles in the grid's slow dimension: the longest CTAs (the first
  // tiles, seen by the most queries) of every kv head start first.
  const int kvh = blockIdx.x, t = blockIdx.y, k0 = t * kBlock;
  const StepBoard<kDkdvStages> board{ring, reinterpret_cast<int32_t*>(smem + L::codes), tid};
  if (wg == 0) {  // ---- producer
    setmaxnreg_dec<kProducerRegs>();
    // Query blocks of 64 that may see this tile: from its first key to its
    // largest visible_until; steps are (query head of the group, block), each
    // posted as 2 block + Partial.
    const int g0 = 2 * t, g1 = min(2 * t + 1, (n - 1) / kGranule);
    const int qb_first = g0;
    const int qb_last =
        a.m.classify ? (max(a.m.stats[g0].max_vu, a.m.stats[g1].max_vu) - 1) / kQStep : (n - 1) / kQStep;
    load_tile<D, kBlock>(base + L::once(0), a.k + kvh * D, a.k_stride, k0, n, tid);
    load_tile<D, kBlock>(base + L::once(1), a.v + kvh * D, a.v_stride, k0, n, tid);
    load_kv_scalars(smem + L::once_scalar(0), smem + L::once_scalar(1), a.m, k0, tid);
    cp_async_arrive(ring.once());
    // Per step: the queries' lse, positions (full_a) and D_i (full_b) by
    // cp.async; Q (full_a) and dO (full_b) by the tensor-copy engine, issued
    // by thread 0, whose arrival on full_a also posts the step. The producer
    // works in 24 registers and its latency decides whether the ring stays
    // ahead: one classification per step, no division (a loop per head).
    int i = 0;
    for (int h = kvh * a.rep; h < (kvh + 1) * a.rep; ++h)
      for (int qb = qb_first; qb <= qb_last; ++qb) {
        const TileKind kind = tile_kind128(a.m, query_block(a.m, qb * kQStep, kQStep), kQStep, t);
        if (kind == TileKind::Skip) continue;
        const int s = i % kDkdvStages, q0 = qb * kQStep;
        if (i >= kDkdvStages) mbar_wait(ring.empty(s), ((i / kDkdvStages) - 1) & 1);
        if (tid < kQStep) load_scalars(smem + L::scalar(0, s), a.lse + h, hq, q0, n, tid);
        else if (window > 0) load_scalars(smem + L::scalar(2, s), a.m.positions, 1, q0, n, tid - kQStep);
        cp_async_arrive(ring.full_a(s));
        if (tid == 0) {  // the post: the code, then thread 0's arrival (with Q's bytes) on full_a
          board.codes[s] = 2 * qb + (kind == TileKind::Partial);
          tma_tile<D, kQStep>(base + L::a(s), &a.q_map, h * D, q0, ring.full_a(s));
        }
        if (tid < kQStep) load_scalars(smem + L::scalar(1, s), a.delta + h, hq, q0, n, tid);
        cp_async_arrive(ring.full_b(s));
        if (tid == 0) tma_tile<D, kQStep>(base + L::b(s), &a.do_map, h * D, q0, ring.full_b(s));
        ++i;
      }
    board.finish(i);
    return;
  }

  // ---- consumers: warpgroup cw owns keys k0 + 64 cw .. + 63 (the rows of Sᵀ)
  setmaxnreg_inc<kConsumerRegs>();
  const int cw = wg - 1, warp = (tid / 32) % 4, lane = tid % 32;
  // This thread's key rows kr, kr + 8 of the tile; their visible_until (0 past
  // n_tokens, which hides them) and positions from shared memory, read only
  // by the mask of Partial steps (held in registers they cost six).
  const int kr = cw * 64 + warp * 16 + lane / 4;
  const int32_t* key_vu = reinterpret_cast<const int32_t*>(smem + L::once_scalar(0));
  const int32_t* key_pos = reinterpret_cast<const int32_t*>(smem + L::once_scalar(1));
  auto hidden = [&](const QueryCols& cols, int nt, int e) {
    const int c = cols.col(nt, e), r = kr + 8 * (e / 2);
    const int32_t q_pos = reinterpret_cast<const int32_t*>(cols.stats)[2 * cols.stride + c];
    return !visible(cols.q0 + c, k0 + r, key_vu[r], q_pos, key_pos[r], window);
  };
  float dk[D / 8][4], dv[D / 8][4];
  zero(dk);
  zero(dv);
  const uint32_t k_rows = base + L::once(0) + cw * 64 * 128, v_rows = base + L::once(1) + cw * 64 * 128;
  mbar_wait(ring.once(), 0);
  // Per step (told by the producer: board.codes = 2 block + Partial): Sᵀ and
  // dPᵀ issued in this consumer's turn (the two alternate, so that one's
  // softmax runs under the other's products); Pᵀ computed as soon as Sᵀ is in
  // (while dPᵀ runs), dV += Pᵀ dO issued; dSᵀ computed while that runs, dK +=
  // dSᵀ Q; one final wait, then the stage goes back.
  if (cw == 1) turn_give(cw);  // warpgroup 0 issues first
  for (int i = 0;; ++i) {
    const int s = i % kDkdvStages;
    const uint32_t parity = (i / kDkdvStages) & 1;
    mbar_wait(ring.full_a(s), parity);
    const int code = board.codes[s];
    if (code < 0) break;
    const bool partial = code & 1;
    const QueryCols cols{reinterpret_cast<const float*>(smem + L::scalar(0, s)), kDkdvStages * kQStep,
                         (code >> 1) * kQStep, lane, window};  // lse, D_i, positions
    float st[kQStep / 8][4], dpt[kQStep / 8][4];  // transposed: rows keys, columns queries
    turn_wait(cw);
    fence_proxy_async();
    gemm_ss<D, kQStep>(st, k_rows, kBlock, base + L::a(s), kQStep);
    mbar_wait(ring.full_b(s), parity);
    fence_proxy_async();
    gemm_ss<D, kQStep>(dpt, v_rows, kBlock, base + L::b(s), kQStep);
    turn_give(cw);

    wgmma_wait<1>();
    pin(st);
    probabilities(st, a.scale_log2, partial, [&](int nt, int e) { return cols.lse_log2(nt, e); },
                  [&](int nt, int e) { return hidden(cols, nt, e); });
    uint32_t pa[kQStep / 16][4], dsa[kQStep / 16][4];
    to_a_fragments<kQStep / 8>(pa, st);
    pin(dv);
    pin(pa);
    gemm_rs<D, kQStep / 16>(dv, pa, base + L::b(s), kQStep);  // dV += Pᵀ dO
    wgmma_wait<1>();                                          // dPᵀ (dV may still run)
    pin(dpt);
    cols.score_grads(st, dpt);
    to_a_fragments<kQStep / 8>(dsa, dpt);
    pin(dk);
    pin(dsa);
    gemm_rs<D, kQStep / 16>(dk, dsa, base + L::a(s), kQStep);  // dK += dSᵀ Q
    wgmma_wait<0>();
    pin(dv);
    pin(dk);
    pin(pa);
    pin(dsa);
    mbar_arrive(ring.empty(s));
  }
  if (cw == 0) turn_wait(cw);  // warpgroup 1's last turn, so that none is left over
  const int row0 = k0 + cw * 64 + warp * 16;
  store_rows<D>(a.dk + kvh * D, a.dk_stride, dk, row0, n, lane, a.scale, a.scale);
  store_rows<D>(a.dv + kvh * D, a.dv_stride, dv, row0, n, lane, 1.f, 1.f);
#else
  __trap();  // built for sm_90a only
#endif
}

template <int D>
__global__ void __launch_bounds__(kThreads, 1) dq_sm90_kernel(const __grid_constant__ Args a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using L = DqSmem<D>;
  // full_a: the K warp's 32 lanes (cp.async) + lane 0's post with K's tensor
  // copy; full_b: V's tensor copy.
  const Cta<L, kDqStages> cta(kConsumers, 33, 1);
  const uint32_t base = cta.base;
  unsigned char* smem = cta.smem;
  const Ring<kDqStages>& ring = cta.ring;

  const int tid = threadIdx.x, wg = tid / 128, lane = tid % 32;
  const int n = a.m.n_tokens, window = a.m.window, hq = a.n_q_heads;
  // Query blocks in the grid's slow dimension, last first: the longest rows of
  // every head start first.
  const int block = gridDim.y - 1 - blockIdx.y;
  const int h = blockIdx.x, kvh = h / a.rep, q0 = block * kBlock;
  const KeyStream keys(a.m, q0);

  if (wg == 0) {  // ---- producer: all 128 threads the loaded-once part, then warp 0 K, warp 1 V
    setmaxnreg_dec<kDqProducerRegs>();
    load_tile<D, kBlock>(base + L::once(0), a.q + h * D, a.q_stride, q0, n, tid);
    load_tile<D, kBlock>(base + L::once(1), a.d_o + h * D, a.do_stride, q0, n, tid);
    load_scalars(smem + L::once_scalar(0), a.lse + h, hq, q0, n, tid);
    load_scalars(smem + L::once_scalar(1), a.delta + h, hq, q0, n, tid);
    if (window > 0) load_scalars(smem + L::once_scalar(2), a.m.positions, 1, q0, n, tid);
    cp_async_arrive(ring.once());
    const int warp = tid / 32;
    if (warp == 0) {
      // Per tile t: once the consumers handed its stage back, the keys'
      // visible_until / positions by the warp's cp.async (4 per lane), K by
      // the tensor-copy engine (lane 0, whose arrival also posts the tile:
      // 2 t + Partial). Runs kDqStages tiles ahead whatever V waits for.
      const StepBoard<kDqStages> board{ring, reinterpret_cast<int32_t*>(smem + L::codes), tid};
      int i = 0;
      keys.each([&](int t, TileKind kind) {
        const int s = i % kDqStages;
        if (i >= kDqStages) mbar_wait(ring.empty(s), ((i / kDqStages) - 1) & 1);
#pragma unroll
        for (int r = 0; r < 4; ++r)
          load_kv_scalars(smem + L::scalar(0, s), smem + L::scalar(1, s), a.m, t * kBlock, lane + 32 * r);
        cp_async_arrive(ring.full_a(s));
        if (lane == 0) {
          board.codes[s] = 2 * t + (kind == TileKind::Partial);
          tma_tile<D, kBlock>(base + L::a(s), &a.k_map, kvh * D, t * kBlock, ring.full_a(s));
        }
        __syncwarp();
        ++i;
      });
      board.finish(i);
    } else if (warp == 1) {
      // V: the same tiles (classified again), each into its stage once the
      // consumers handed it back (lane 0 issues the copies).
      int j = 0;
      keys.each([&](int t, TileKind) {
        const int s = j % kDqStages;
        if (j >= kDqStages) mbar_wait(ring.empty_b(s), ((j / kDqStages) - 1) & 1);
        if (lane == 0) tma_tile<D, kBlock>(base + L::b(s), &a.v_map, kvh * D, t * kBlock, ring.full_b(s));
        __syncwarp();
        ++j;
      });
      cp_async_wait_all();
    } else {
      cp_async_wait_all();
    }
    return;
  }

  // ---- consumers: warpgroup cw owns query rows q0 + 64 cw .. + 63
  setmaxnreg_inc<kDqConsumerRegs>();
  const int cw = wg - 1, warp = (tid / 32) % 4;
  const int r0 = cw * 64 + warp * 16 + lane / 4;  // this thread's rows: r0, r0 + 8 of the block
  const float* s_lse = reinterpret_cast<const float*>(smem + L::once_scalar(0));
  const float* s_delta = reinterpret_cast<const float*>(smem + L::once_scalar(1));
  const int32_t* s_pos = reinterpret_cast<const int32_t*>(smem + L::once_scalar(2));
  float dq[D / 8][4];
  zero(dq);
  const uint32_t q_rows = base + L::once(0) + cw * 64 * 128, do_rows = base + L::once(1) + cw * 64 * 128;
  const int32_t* codes = reinterpret_cast<const int32_t*>(smem + L::codes);
  mbar_wait(ring.once(), 0);
  fence_proxy_async();  // Q and dO came by cp.async (K and V by tensor copies: no fence)
  // Per tile (told by the producer: codes = 2 t + Partial), for each half of
  // 64 keys: S and dP issued; P as soon as S is in (while dP runs; in the
  // second half the first half's dQ product also completes here), dS, dQ +=
  // dS K issued. V goes back once the second dP is in, K after one final wait.
  for (int i = 0;; ++i) {
    const int s = i % kDqStages;
    const uint32_t parity = (i / kDqStages) & 1;
    mbar_wait(ring.full_a(s), parity);
    const int code = codes[s];
    if (code < 0) break;
    const int t = code >> 1;
    const bool partial = code & 1;
    const int32_t* vu = reinterpret_cast<const int32_t*>(smem + L::scalar(0, s));
    const int32_t* kp = reinterpret_cast<const int32_t*>(smem + L::scalar(1, s));
    const float lse_log2[2] = {s_lse[r0] * kLog2e, s_lse[r0 + 8] * kLog2e};
    const float delta[2] = {s_delta[r0], s_delta[r0 + 8]};
    uint32_t dsa[4][4];
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      const uint32_t k_half = base + L::a(s) + hf * 64 * 128, v_half = base + L::b(s) + hf * 64 * 128;
      float sc[8][4], dp[8][4];
      gemm_ss<D, 64>(sc, q_rows, kBlock, k_half, kBlock);
      if (hf == 0) mbar_wait(ring.full_b(s), parity);  // V may land after K
      gemm_ss<D, 64>(dp, do_rows, kBlock, v_half, kBlock);
      wgmma_wait<1>();
      pin(sc);
      pin(dq);
      pin(dsa);
      probabilities(sc, a.scale_log2, partial, [&](int, int e) { return lse_log2[e / 2]; },
                    [&](int nt, int e) {
                      const int c = hf * 64 + nt * 8 + 2 * (lane % 4) + (e & 1), r = r0 + 8 * (e / 2);
                      return !visible(q0 + r, t * kBlock + c, vu[c], s_pos[r], kp[c], window);
                    });
      wgmma_wait<0>();
      pin(dp);
      if (hf == 1) mbar_arrive(ring.empty_b(s));  // both dP in: V goes back
      score_grads(sc, dp, [&](int, int e) { return delta[e / 2]; });
      to_a_fragments<8>(dsa, dp);
      pin(dq);
      pin(dsa);
      gemm_rs<D, 4>(dq, dsa, k_half, kBlock);  // dQ += dS K (this half's keys)
    }
    wgmma_wait<0>();
    pin(dq);
    pin(dsa);
    mbar_arrive(ring.empty(s));
  }
  store_rows<D>(a.dq + h * D, a.dq_stride, dq, q0 + cw * 64 + warp * 16, n, lane, a.scale, a.scale);
#else
  __trap();  // built for sm_90a only
#endif
}

template <int D>
void launch(const Args& args, int n_tokens, int n_q_heads, int n_kv_heads, cudaStream_t stream) {
  constexpr size_t dkdv_bytes = DkdvSmem<D>::bytes, dq_bytes = DqSmem<D>::bytes;
  static const bool once =
      (allow_shared(dkdv_sm90_kernel<D>, dkdv_bytes), allow_shared(dq_sm90_kernel<D>, dq_bytes), true);
  (void)once;
  const int blocks = (n_tokens + kBlock - 1) / kBlock;
  dkdv_sm90_kernel<D><<<dim3(n_kv_heads, blocks), kThreads, dkdv_bytes, stream>>>(args);
  check_launch("attention backward (dk, dv; sm90)");
  dq_sm90_kernel<D><<<dim3(n_q_heads, blocks), kThreads, dq_bytes, stream>>>(args);
  check_launch("attention backward (dq; sm90)");
}

}  // namespace
}  // namespace attn::sm90

bool attention_backward_uses_sm90(int64_t /*head_dim*/) {
  // On by default at both head dims: measured faster than the mma.sync passes
  // on every benchmark row (docs/attention-cuda.md).
  return attention_sm90_selected("DUET_ATTENTION_BWD_SM90", true);
}

void attention_backward_sm90(const AttentionBackward& p, const float* delta, cudaStream_t stream) {
  if (!attention_sm90_supported())
    fail("attention backward (CUDA, sm90): needs a compute capability 9.0 GPU (Hopper); set "
         "DUET_ATTENTION_BWD_SM90=0 to use the mma.sync kernels");
  const double scale = 1.0 / std::sqrt(static_cast<double>(p.head_dim));
  const int64_t width = p.n_q_heads * p.head_dim;
  const int64_t kv_width = p.n_kv_heads * p.head_dim;
  const attn::sm90::Args a{attn::sm90::tile_map(p.q, p.q_row_stride, p.n_tokens, width, attn::sm90::kQStep),
                           attn::sm90::tile_map(p.d_o, p.do_row_stride, p.n_tokens, width, attn::sm90::kQStep),
                           attn::sm90::tile_map(p.k, p.k_row_stride, p.n_tokens, kv_width, attn::sm90::kBlock),
                           attn::sm90::tile_map(p.v, p.v_row_stride, p.n_tokens, kv_width, attn::sm90::kBlock),
                           p.q, p.k, p.v, p.d_o, p.lse, delta, p.dq, p.dk, p.dv,
                           p.q_row_stride, p.k_row_stride, p.v_row_stride, p.do_row_stride,
                           p.dq_row_stride, p.dk_row_stride, p.dv_row_stride,
                           static_cast<int>(p.n_q_heads), static_cast<int>(p.n_q_heads / p.n_kv_heads),
                           static_cast<float>(scale), static_cast<float>(scale * attn::kLog2e),
                           attn::mask_args(p, p.workspace)};
  const int n = static_cast<int>(p.n_tokens);
  const int hq = static_cast<int>(p.n_q_heads), hkv = static_cast<int>(p.n_kv_heads);
  if (p.head_dim == 64) attn::sm90::launch<64>(a, n, hq, hkv, stream);
  else attn::sm90::launch<128>(a, n, hq, hkv, stream);
}

}  // namespace duet::backend::cuda
