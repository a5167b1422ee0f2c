// Hopper forward (sm_90a): a persistent grid (one CTA of three warpgroups per
// multiprocessor) over work items (query head, 128 queries), longest rows
// first, each CTA taking the next item from a counter in the workspace when
// it starts one (so the next item's Q and K/V load while the last one's
// products and output finish). Warpgroup 0 is the producer, two warps of it
// working apart: warp 0 loads per item Q, per non-skipped key tile of 128 K
// (tensor-copy engine, TMA, issued by lane 0) with the keys' visible_until /
// positions (cp.async, the warp's 32 lanes), and posts each tile (index,
// Partial, last of its item) to the consumers; warp 1 loads V (TMA) into its
// own ring, so that K never waits for a V stage. Stages are 128-byte swizzled
// (2 K and 2 V at hd128, 3 and 3 at hd64) and complete on mbarriers; K goes
// back after S = Q Kᵀ, V after O += P V, Q after the item's last S. Both warps
// find the tiles with a warp-wide scan (32 tiles classified at once).
// Warpgroups 1 and 2 are consumers of 64 query rows each: S with wgmma
// m64n128k16 (both operands from shared memory), masked online softmax in fp32
// (log2 domain), P rounded to bf16 straight from the accumulators into wgmma A
// registers, O += P V with wgmma m64nDk16 (V N-major). Per tile i a consumer
// issues S_i and O += P_{i-1} V_{i-1} together, then runs the softmax of S_i
// while the tensor cores do the second (FlashAttention-3's intra-warpgroup
// overlap), and the two consumers take turns to issue (named barriers), so
// that one's softmax also runs under the other's products. The producer keeps
// 56 registers, the consumers get 224 (setmaxnreg).
//
// Tiles: the plan's granules are 64 tokens; a key tile here is two granules
// (aligned to 128), Skip when both are skipped, Full when both are Full, else
// Partial (per-element mask from the staged visible_until / positions, which
// also hides zero-filled keys past n_tokens). The mask is exact in every
// case, so classification only saves work. Each output row is computed by one
// CTA in a fixed order whichever CTA takes its item: the results do not
// depend on the schedule.
#include "backend/cuda/attention_sm90.cuh"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "backend/cuda/attention_forward_sm90.hpp"

namespace duet::backend::cuda {

namespace attn::sm90 {
namespace {

constexpr int kRows = 128;   // queries per item: two consumer warpgroups of 64
constexpr int kTileN = 128;  // keys per tile: two plan granules
constexpr int kThreads = 384;
constexpr int kConsumers = 256;
constexpr int kProducerRegs = 56, kConsumerRegs = 224;  // 128·56 + 256·224 ≤ 65536
constexpr int kItemSlots = 8;  // items posted from the K warp to the V warp (see Smem)

struct Args {
  // Q, K and V in boxes of 64 columns x 128 rows, 128-byte swizzle (tile_map)
  CUtensorMap q_map, k_map, v_map;
  bf16* o;
  float* lse;
  int32_t* counter;  // the workspace's work counter: next item (past the grid's first), CTAs done
  int64_t o_stride;
  int n_q_heads, rep, n_blocks, n_items;
  float scale_log2;
  MaskArgs m;
};

// Item w: query head w % heads of block n_blocks − 1 − w / heads (the longest
// rows of every head first; the counter hands items out in this order).
struct Item {
  int h, q0;
  __device__ Item(const Args& a, int w) : h(w % a.n_q_heads), q0((a.n_blocks - 1 - w / a.n_q_heads) * kRows) {}
};

// Shared memory, from a 1024-aligned base: Q [D/64][128][64]; SK stages of K
// and SV of V, each [D/64][128][64] (SW128); per K stage the keys'
// visible_until and positions [128] int32 and the tile's code (the board);
// the items posted to the V warp (kItemSlots) and the consumers' item; the
// mbarriers: q_full / q_empty, per K stage k_full / k_empty, per V stage
// v_full / v_empty, per item slot item_posted.
template <int D, int SK, int SV>
struct Smem {
  // The item slots have no "slot free" barrier: every item has at least one
  // tile (each query sees its own key), so the K warp, held SK tiles ahead of
  // the consumers by k_empty, is at most SK + 2 items ahead of the V warp.
  static_assert(SK <= 4, "the item slots assume the K warp at most SK + 2 items ahead of the V warp");
  static constexpr uint32_t tile = kTileN * D * 2;
  static constexpr uint32_t q = 0;
  static constexpr uint32_t k(int s) { return (1 + s) * tile; }
  static constexpr uint32_t v(int s) { return (1 + SK + s) * tile; }
  static constexpr uint32_t scalars = (1 + SK + SV) * tile;
  static constexpr uint32_t scalar(int j, int s) { return scalars + (j * SK + s) * kTileN * 4; }
  static constexpr uint32_t codes = scalars + 2 * SK * kTileN * 4;
  static constexpr uint32_t items = codes + 4 * SK;  // [kItemSlots] for the V warp, then the consumers'
  static constexpr uint32_t bars = (items + 4 * (kItemSlots + 1) + 7) / 8 * 8;
  static constexpr uint32_t q_full = bars, q_empty = bars + 8;
  static constexpr uint32_t k_full(int s) { return bars + 16 + 8 * s; }
  static constexpr uint32_t k_empty(int s) { return bars + 16 + 8 * (SK + s); }
  static constexpr uint32_t v_full(int s) { return bars + 16 + 8 * (2 * SK + s); }
  static constexpr uint32_t v_empty(int s) { return bars + 16 + 8 * (2 * SK + SV + s); }
  static constexpr uint32_t posted(int j) { return bars + 16 + 8 * (2 * SK + 2 * SV + j); }
  static constexpr size_t bytes = bars + 16 + 8 * (2 * SK + 2 * SV + kItemSlots) + 1024;  // base rounded up
};

// Tile codes on the board: 4 t + 2 (last tile of its item) + (Partial); -1 ends.
constexpr int kLast = 2, kPartial = 1;

// An item's Q into L2 (the tensor-copy engine's prefetch) when the K warp,
// ahead of the consumers, starts the item, so that its load, once the
// consumers hand the last item's Q back, hits L2.
template <int D>
__device__ inline void prefetch_tile_l2(const CUtensorMap* map, int col0, int row0) {
#pragma unroll
  for (int c = 0; c < D / 64; ++c)
    asm volatile("cp.async.bulk.prefetch.tensor.2d.L2.global.tile [%0, {%1, %2}];\n" ::"l"(
                     reinterpret_cast<uint64_t>(map)),
                 "r"(col0 + c * 64), "r"(row0)
                 : "memory");
}

// The tiles of an item as the producer steps over them: next(t) is the
// first tile from t on that is not skipped (> keys.last when none is left),
// partial(t) whether tile t (one next() returned, before the next call) is
// Partial. For a whole warp: lane l classifies tile base + l of a window of
// 32 at once (one round of loads per 32 tiles; classifying tile after tile,
// KeyStream::next, made the one warp that loads K too slow to keep ahead of
// the consumers), the warp's ballots keep which are live and which Partial,
// and next() is a bit search.
struct TileScan {
  const KeyStream& keys;
  int lane, base = 0;
  uint32_t live = 0, part = 0;
  __device__ TileScan(const KeyStream& k, int l) : keys(k), lane(l) { fill(k.first); }
  __device__ void fill(int b) {
    base = b;
    const int t = b + lane;
    const TileKind kind = t <= keys.last ? keys.kind(t) : TileKind::Skip;
    live = __ballot_sync(0xffffffffu, kind != TileKind::Skip);
    part = __ballot_sync(0xffffffffu, kind == TileKind::Partial);
  }
  __device__ int next(int t) {
    while (t <= keys.last) {
      if (t >= base + 32) fill(t);
      const uint32_t m = live >> (t - base);
      if (m != 0) return t + __ffs(m) - 1;
      t = base + 32;
    }
    return t;
  }
  __device__ bool partial(int t) const { return (part >> (t - base)) & 1u; }
};

// Ring stages of K (with the keys' scalars) and of V: 2 and 2 at hd128 (160 KB
// with Q), 3 and 3 at hd64 (112 KB). (Session 8: a third K stage at hd128 was
// slower, with the K and V loads apart or not.)
template <int D>
constexpr int kStagesK = D == 64 ? 3 : 2;
template <int D>
constexpr int kStagesV = D == 64 ? 3 : 2;

template <int D>
__global__ void __launch_bounds__(kThreads, 1) forward_sm90_kernel(const __grid_constant__ Args a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int SK = kStagesK<D>, SV = kStagesV<D>;
  using L = Smem<D, SK, SV>;
  const uint32_t raw = smem_u32(dynamic_smem);
  const uint32_t base = (raw + 1023) & ~1023u;
  unsigned char* smem = dynamic_smem + (base - raw);
  const int tid = threadIdx.x, wg = tid / 128, lane = tid % 32;
  if (tid == 0) {
    mbar_init(base + L::q_full, 1);  // the tensor copy's arrival
    mbar_init(base + L::q_empty, kConsumers);
    for (int s = 0; s < SK; ++s) {
      mbar_init(base + L::k_full(s), 33);  // the K warp's 32 cp.async (scalars) + the tensor copy's
      mbar_init(base + L::k_empty(s), kConsumers);
    }
    for (int s = 0; s < SV; ++s) {
      mbar_init(base + L::v_full(s), 1);
      mbar_init(base + L::v_empty(s), kConsumers);
    }
    for (int j = 0; j < kItemSlots; ++j) mbar_init(base + L::posted(j), 1);
    mbar_init_fence();
  }
  __syncthreads();
  int32_t* codes = reinterpret_cast<int32_t*>(smem + L::codes);
  int32_t* items = reinterpret_cast<int32_t*>(smem + L::items);  // [kItemSlots]: the V warp's; [kItemSlots]: the consumers'
  const int n = a.m.n_tokens, window = a.m.window;

  if (wg == 0) {  // ---- producer: warp 0 K (and Q), warp 1 V; the other two warps leave
    setmaxnreg_dec<kProducerRegs>();
    const int warp = tid / 32;
    if (warp == 0) {
      // Per item: its index posted to the V warp, Q prefetched into L2; per
      // tile t: the keys' visible_until / positions by the warp's cp.async (4
      // per lane), K by the tensor-copy engine (lane 0, whose arrival also posts
      // the tile); Q with the item's first K, once the consumers are done with
      // the last item's. K stages come back after S, so K runs SK tiles ahead
      // whatever V waits for.
      int i = 0;  // K steps so far
      int k = 0;
      for (int w = blockIdx.x; w < a.n_items; ++k) {
        int next = 0;  // asked for now, so that it is back by the end of this item (lane 0)
        const Item item(a, w);
        if (lane == 0) {
          next = gridDim.x + atomicAdd(a.counter, 1);
          items[k % kItemSlots] = w;
          mbar_arrive(base + L::posted(k % kItemSlots));
          prefetch_tile_l2<D>(&a.q_map, item.h * D, item.q0);
        }
        const int kvh = item.h / a.rep;
        const KeyStream keys(a.m, item.q0);
        TileScan tiles(keys, lane);
        bool first = true;
        for (int t = tiles.next(keys.first); t <= keys.last; ++i, first = false) {
          const bool partial = tiles.partial(t);
          const int t_next = tiles.next(t + 1), s = i % SK;
          if (i >= SK) mbar_wait(base + L::k_empty(s), ((i / SK) - 1) & 1);
#pragma unroll
          for (int r = 0; r < 4; ++r)
            load_kv_scalars(smem + L::scalar(0, s), smem + L::scalar(1, s), a.m, t * kTileN, lane + 32 * r);
          cp_async_arrive(base + L::k_full(s));
          if (lane == 0) {
            codes[s] = 4 * t + (t_next > keys.last ? kLast : 0) + (partial ? kPartial : 0);
            tma_tile<D, kTileN>(base + L::k(s), &a.k_map, kvh * D, t * kTileN, base + L::k_full(s));
            if (first) {
              if (k > 0) mbar_wait(base + L::q_empty, (k - 1) & 1);
              items[kItemSlots] = w;
              tma_tile<D, kRows>(base + L::q, &a.q_map, item.h * D, item.q0, base + L::q_full);
            }
          }
          __syncwarp();
          t = t_next;
        }
        w = __shfl_sync(0xffffffffu, next, 0);
      }
      // The end: -1 on the board in the next K stage and to the V warp.
      const int s = i % SK;
      if (i >= SK) mbar_wait(base + L::k_empty(s), ((i / SK) - 1) & 1);
      if (lane == 0) {
        codes[s] = -1;
        mbar_arrive(base + L::k_full(s));
        items[k % kItemSlots] = -1;
        mbar_arrive(base + L::posted(k % kItemSlots));
      }
      mbar_arrive(base + L::k_full(s));
      cp_async_wait_all();
      // The last CTA to finish leaves the counter at zero for the next forward.
      if (lane == 0 && atomicAdd(a.counter + 1, 1) == static_cast<int>(gridDim.x) - 1) {
        a.counter[0] = 0;
        a.counter[1] = 0;
      }
    } else if (warp == 1) {
      // V: the same items (posted by the K warp) and tiles (the same
      // classification), each into its stage once the consumers handed it
      // back (lane 0 issues the copies).
      int j = 0;  // V steps so far
      for (int k = 0;; ++k) {
        mbar_wait(base + L::posted(k % kItemSlots), (k / kItemSlots) & 1);
        const int w = items[k % kItemSlots];
        if (w < 0) break;
        const Item item(a, w);
        const int kvh = item.h / a.rep;
        const KeyStream keys(a.m, item.q0);
        TileScan tiles(keys, lane);
        for (int t = tiles.next(keys.first); t <= keys.last; t = tiles.next(t + 1), ++j) {
          const int s = j % SV;
          if (j >= SV) mbar_wait(base + L::v_empty(s), ((j / SV) - 1) & 1);
          if (lane == 0) tma_tile<D, kTileN>(base + L::v(s), &a.v_map, kvh * D, t * kTileN, base + L::v_full(s));
          __syncwarp();
        }
      }
    }
    return;
  }

  // ---- consumers: warpgroup cw owns query rows q0 + 64 cw .. + 63 of each item
  setmaxnreg_inc<kConsumerRegs>();
  const int cw = wg - 1, warp = (tid / 32) % 4;
  const uint32_t q_base = base + L::q + cw * 64 * 128;
  float o[D / 8][4];
  float sc[kTileN / 8][4];      // S = Q Kᵀ of a tile (64 x 128 per warpgroup), then P in fp32
  uint32_t pa[kTileN / 16][4];  // P in bf16: the A operand of O += P V
  float alpha[2];               // the rows' rescale factor of the last softmax
  float m_run[2], l_run[2];
  int rows[2], pos[2];
  // S of the tile in stage st, issued, not waited for (Q, K by tensor copy:
  // their mbarriers make them visible to wgmma, no proxy fence).
  auto issue_s = [&](int st) { gemm_ss<D, kTileN>(sc, q_base, kRows, base + L::k(st), kTileN); };
  // O += P V of the tile whose V is in stage sv.
  auto issue_pv = [&](int sv) { gemm_rs<D, kTileN / 16>(o, pa, base + L::v(sv), kTileN); };
  // The masked online softmax of S (tile code, in stage st): P in sc (fp32),
  // the running max and sum updated, alpha = the factor O must take.
  auto softmax = [&](int st, int code) {
    if (code & kPartial) {  // hidden scores to -inf, in a pass of its own (off the Full tiles' path)
      const int t = code >> 2;
      const int32_t* vu = reinterpret_cast<const int32_t*>(smem + L::scalar(0, st));
      const int32_t* kp = reinterpret_cast<const int32_t*>(smem + L::scalar(1, st));
#pragma unroll
      for (int nt = 0; nt < kTileN / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int c = nt * 8 + 2 * (lane % 4) + (e & 1);
          if (!visible(rows[e / 2], t * kTileN + c, vu[c], pos[e / 2], kp[c], window)) sc[nt][e] = -INFINITY;
        }
    }
    // The rows' maxima of the raw scores, in 4 interleaved chains (max is
    // exact in any order); scaling is monotonic, so scaled they are the
    // maxima of the scaled scores.
    float mx[2][4];
#pragma unroll
    for (int r = 0; r < 2; ++r)
#pragma unroll
      for (int j = 0; j < 4; ++j) mx[r][j] = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < kTileN / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) mx[e / 2][nt % 4] = fmaxf(mx[e / 2][nt % 4], sc[nt][e]);
    float base_r[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float m = fmaxf(fmaxf(mx[r][0], mx[r][1]), fmaxf(mx[r][2], mx[r][3]));
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
      const float m_new = fmaxf(m_run[r], m * a.scale_log2);
      base_r[r] = m_new == -INFINITY ? 0.f : m_new;  // a row that sees nothing yet
      alpha[r] = exp2f(m_run[r] - base_r[r]);
      m_run[r] = m_new;
      l_run[r] *= alpha[r];
    }
    // p = 2^(s·scale·log2 e − max): one FFMA and one MUFU.EX2 per score.
#pragma unroll
    for (int nt = 0; nt < kTileN / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float p = exp2_ftz(fmaf(sc[nt][e], a.scale_log2, -base_r[e / 2]));
        sc[nt][e] = p;
        l_run[e / 2] += p;
      }
  };
  // K of a stage goes back to the producer once S is in (Full tiles) or after
  // the softmax (Partial: the mask reads the stage's visible_until / positions).
  auto release_k = [&](int st, int code, bool after_softmax) {
    if (((code & kPartial) != 0) == after_softmax) mbar_arrive(base + L::k_empty(st));
  };
  // An item's start: its rows (and their positions), O and the statistics empty.
  auto start_item = [&](const Item& item) {
    const int row0 = item.q0 + cw * 64 + warp * 16 + lane / 4;
    rows[0] = row0, rows[1] = row0 + 8;
    pos[0] = pos[1] = 0;
    if (window > 0)
      for (int r = 0; r < 2; ++r) pos[r] = rows[r] < n ? a.m.positions[rows[r]] : 0;
    m_run[0] = m_run[1] = -INFINITY;
    l_run[0] = l_run[1] = 0.f;
  };
  // An item's end: lse and O / l of its rows (O complete in o).
  auto finish_item = [&](const Item& item) {
    float inv[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 1);
      l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 2);
      inv[r] = l_run[r] > 0.f ? 1.f / l_run[r] : 0.f;
      if (lane % 4 == 0 && rows[r] < n)
        a.lse[static_cast<int64_t>(rows[r]) * a.n_q_heads + item.h] = (m_run[r] + log2f(l_run[r])) * kLn2;
    }
    store_rows<D>(a.o + item.h * D, a.o_stride, o, item.q0 + cw * 64 + warp * 16, n, lane, inv[0], inv[1]);
  };

  // Per item: tile i: S_i issued, then O += P_{i-1} V_{i-1} right behind it;
  // the softmax of S_i runs while the tensor cores do P_{i-1} V_{i-1} (FA3's
  // intra-warpgroup overlap); then O is rescaled and P_i rounded into pa.
  // Every wait sits inside the iteration (no wgmma in flight over the loop
  // edge, which would serialise them, C7515). The turns go on across items
  // (both consumers take the same number).
  // An item's first tile alone (no product of the last item to go with it):
  // S, the softmax (o is zero: no rescale), P into pa.
  auto first_step = [&](int st, int cd) {
    turn_wait(cw);
    issue_s(st);
    turn_give(cw);
    wgmma_wait<0>();
    pin(sc);
    if (cd & kLast) mbar_arrive(base + L::q_empty);
    release_k(st, cd, false);
    softmax(st, cd);
    release_k(st, cd, true);
    to_a_fragments<kTileN / 8>(pa, sc);
  };

  if (cw == 1) turn_give(cw);  // warpgroup 0 issues first
  int i = 0;                   // ring steps so far
  int k = 0;                   // items so far
  mbar_wait(base + L::k_full(0), 0);
  int code = codes[0];
  if (code >= 0) {
    mbar_wait(base + L::q_full, 0);
    Item item(a, items[kItemSlots]);
    start_item(item);
    zero(o);
    first_step(0, code);
    for (;;) {
      for (++i; !(code & kLast); ++i) {
        const int s = i % SK, sv = (i - 1) % SV;
        mbar_wait(base + L::k_full(s), (i / SK) & 1);
        code = codes[s];
        mbar_wait(base + L::v_full(sv), ((i - 1) / SV) & 1);
        turn_wait(cw);
        issue_s(s);
        pin(o);
        pin(pa);
        issue_pv(sv);
        turn_give(cw);
        wgmma_wait<1>();  // S_i
        pin(sc);
        if (code & kLast) mbar_arrive(base + L::q_empty);
        release_k(s, code, false);
        softmax(s, code);
        release_k(s, code, true);
        wgmma_wait<0>();  // O += P_{i-1} V_{i-1}
        pin(o);
        pin(pa);
        mbar_arrive(base + L::v_empty(sv));
        // o · 1 = o: skipped where no row of the warp has a new maximum
        if (!__all_sync(0xffffffffu, alpha[0] == 1.f && alpha[1] == 1.f)) {
#pragma unroll
          for (int nt = 0; nt < D / 8; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) o[nt][e] *= alpha[e / 2];
        }
        to_a_fragments<kTileN / 8>(pa, sc);
      }
      // The item's last tile is in pa (step i - 1); step i is the next item's
      // first tile, or -1.
      const int s = i % SK, sv = (i - 1) % SV;
      mbar_wait(base + L::k_full(s), (i / SK) & 1);
      code = codes[s];
      mbar_wait(base + L::v_full(sv), ((i - 1) / SV) & 1);
      ++k;
      turn_wait(cw);
      pin(o);
      pin(pa);
      issue_pv(sv);
      turn_give(cw);
      wgmma_wait<0>();
      pin(o);
      pin(pa);
      mbar_arrive(base + L::v_empty(sv));
      finish_item(item);
      if (code < 0) break;
      mbar_wait(base + L::q_full, k & 1);
      item = Item(a, items[kItemSlots]);
      start_item(item);
      zero(o);
      first_step(s, code);
    }
  }
  if (cw == 0) turn_wait(cw);  // warpgroup 1's last turn, so that none is left over
#else
  __trap();  // built for sm_90a only
#endif
}

// The persistent grid: one CTA per multiprocessor (at most one per item).
// DUET_ATTENTION_SM90_CTAS caps it (tests: many items per CTA on small rows).
int grid_size(int n_items) {
  static const int sms = [] {
    int device = 0, count = 0;
    check(cudaGetDevice(&device), "attention forward (sm90): cudaGetDevice");
    check(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device),
          "attention forward (sm90): multiprocessor count");
    return count;
  }();
  int ctas = sms;
  if (const char* e = std::getenv("DUET_ATTENTION_SM90_CTAS"); e != nullptr && std::atoi(e) > 0)
    ctas = std::min(ctas, std::atoi(e));
  return std::min(ctas, n_items);
}

template <int D>
void launch(const Args& args, cudaStream_t stream) {
  constexpr size_t bytes = Smem<D, kStagesK<D>, kStagesV<D>>::bytes;
  static const bool once = (allow_shared(forward_sm90_kernel<D>, bytes), true);
  (void)once;
  forward_sm90_kernel<D><<<grid_size(args.n_items), kThreads, bytes, stream>>>(args);
  check_launch("attention forward (sm90)");
}

}  // namespace
}  // namespace attn::sm90

namespace attn::sm90 {
namespace {

using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                 const cuuint64_t*, const cuuint32_t*, const cuuint32_t*,
                                 CUtensorMapInterleave, CUtensorMapSwizzle, CUtensorMapL2promotion,
                                 CUtensorMapFloatOOBfill);

// The driver's cuTensorMapEncodeTiled, through the runtime (no link to libcuda).
EncodeTiled encoder() {
  static const EncodeTiled fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult found{};
    check(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &found),
          "attention (sm90): cudaGetDriverEntryPointByVersion");
    if (found != cudaDriverEntryPointSuccess || f == nullptr)
      fail("attention (sm90): the driver has no cuTensorMapEncodeTiled");
    return reinterpret_cast<EncodeTiled>(f);
  }();
  return fn;
}

}  // namespace

CUtensorMap tile_map(const bf16* data, int64_t stride, int64_t n_tokens, int64_t width, int box_rows) {
  CUtensorMap map;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(width), static_cast<cuuint64_t>(n_tokens)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(stride) * 2};
  const cuuint32_t box[2] = {64, static_cast<cuuint32_t>(box_rows)}, steps[2] = {1, 1};
  const CUresult r = encoder()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<bf16*>(data), dims,
                               strides, box, steps, CU_TENSOR_MAP_INTERLEAVE_NONE,
                               CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                               CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) fail("attention (sm90): cuTensorMapEncodeTiled failed ({})", static_cast<int>(r));
  return map;
}

}  // namespace attn::sm90

bool attention_sm90_selected(const char* variable, bool by_default) {
  const char* e = std::getenv(variable);
  const bool forced_on = e != nullptr && std::strcmp(e, "1") == 0;
  const bool forced_off = e != nullptr && std::strcmp(e, "0") == 0;
  if (forced_off || (!forced_on && !by_default)) return false;
  return attention_sm90_supported();
}

bool attention_forward_uses_sm90(int64_t /*head_dim*/) {
  // On by default at both head dims: measured faster than the mma.sync forward
  // on every benchmark row (docs/attention-cuda.md).
  return attention_sm90_selected("DUET_ATTENTION_SM90", true);
}

bool attention_sm90_supported() {
  int device = 0, major = 0, minor = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess)
    return false;
  return major == 9 && minor == 0;
}

void attention_forward_sm90(const AttentionForward& p, cudaStream_t stream) {
  const char* op = "attention forward (CUDA, sm90)";
  attention_check_supported(p);
  attn::check_qkvo(op, p, p.q, p.q_row_stride, p.k, p.k_row_stride, p.v, p.v_row_stride, p.o,
                   p.o_row_stride);
  backend::detail::require_data(op, "lse", p.lse, p.n_tokens);
  backend::detail::require_data(op, "workspace", p.workspace, p.n_tokens);
  if (!attention_sm90_supported())
    fail("{}: needs a compute capability 9.0 GPU (Hopper); set DUET_ATTENTION_SM90=0 to use the "
         "mma.sync kernel", op);
  if (p.n_tokens == 0) return;
  const int64_t width = p.n_kv_heads * p.head_dim;
  const int n_blocks = static_cast<int>((p.n_tokens + attn::sm90::kRows - 1) / attn::sm90::kRows);
  const attn::sm90::Args a{
      attn::sm90::tile_map(p.q, p.q_row_stride, p.n_tokens, p.n_q_heads * p.head_dim, attn::sm90::kRows),
      attn::sm90::tile_map(p.k, p.k_row_stride, p.n_tokens, width, attn::sm90::kTileN),
      attn::sm90::tile_map(p.v, p.v_row_stride, p.n_tokens, width, attn::sm90::kTileN),
      p.o,
      p.lse,
      reinterpret_cast<int32_t*>(static_cast<unsigned char*>(p.workspace) + attn::PlanLayout(p).counter_offset),
      p.o_row_stride,
      static_cast<int>(p.n_q_heads),
      static_cast<int>(p.n_q_heads / p.n_kv_heads),
      n_blocks,
      n_blocks * static_cast<int>(p.n_q_heads),
      static_cast<float>(attn::kLog2e / std::sqrt(static_cast<double>(p.head_dim))),
      attn::mask_args(p, p.workspace)};
  if (p.head_dim == 64) attn::sm90::launch<64>(a, stream);
  else attn::sm90::launch<128>(a, stream);
}

}  // namespace duet::backend::cuda
