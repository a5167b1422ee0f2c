#pragma once
// Private to the Hopper kernels (attention_forward_sm90.cu,
// attention_backward_sm90.cu): building blocks for sm_90a. wgmma.mma_async
// with shared-memory descriptors for 128-byte-swizzled tiles, mbarriers
// (cp.async completions arrive on them), register reallocation, and the
// pieces the three kernels share: the shared-memory layout of a loaded-once
// part plus a ring of stages, the steps posted to the consumers, the 128-key
// tile classification and the products over a whole tile.
//
// Shared-memory tile layout used with these descriptors ("SW128"): a tile of
// R rows × D bf16 is stored as D/64 column slabs of R rows × 128 bytes, slab
// after slab; inside a slab row r is at r·128 and its 16-byte chunk c at
// ((c ^ (r & 7)) · 16): the hardware's 128-byte swizzle (address bits 4-6
// XOR bits 7-9), so every slab must start 1024-byte aligned.
#include <cuda.h>  // CUtensorMap (its encoder is found through the runtime: nothing links libcuda)

#include <cstdint>

#include "backend/cuda/attention_common.cuh"

namespace duet::backend::cuda::attn::sm90 {

// Host: a [n_tokens, width] bf16 matrix with rows `stride` elements apart (Q, K,
// V or dO of every head: width = heads·D) as boxes of 64 columns x box_rows
// rows in the SW128 layout (the tensor-copy engine's 128-byte swizzle); rows
// past n_tokens arrive as zeros. (attention_forward_sm90.cu)
CUtensorMap tile_map(const bf16* data, int64_t stride, int64_t n_tokens, int64_t width, int box_rows);

// Byte offset of 16-byte chunk c (of D/8) of row r in an SW128 tile of `rows` rows.
__device__ inline uint32_t sw128(int rows, int r, int c) {
  return static_cast<uint32_t>((c >> 3) * rows * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4));
}

// wgmma shared-memory matrix descriptor, 128-byte swizzle: start address,
// leading and stride byte offsets (all >> 4), swizzle mode 1 in bits 62-63.
// K-major operand (rows of K contiguous): SBO = 1024 (one 8-row swizzle atom
// to the next), LBO unused; advancing K by 16 elements adds 32 bytes to the
// start inside a slab. N-major operand (N contiguous, V as stored): LBO = the
// distance between 64-column slabs along N, SBO = 1024 (8 rows of K).
__device__ inline uint64_t sw128_desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | (static_cast<uint64_t>(lbo >> 4) << 16) |
         (static_cast<uint64_t>(sbo >> 4) << 32) | (uint64_t{1} << 62);
}

__device__ inline void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ inline void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ inline void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Keeps the compiler from moving accesses of wgmma operands across the
// asynchronous product (issue .. wait).
template <int N>
__device__ inline void pin(float (&d)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" : "+f"(d[i][j])::"memory");
}
template <int N>
__device__ inline void pin(uint32_t (&d)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" : "+r"(d[i][j])::"memory");
}

// Generic-proxy writes (cp.async) made visible to the async proxy (wgmma
// operand reads) of this thread; run after the mbarrier wait that acquired them.
__device__ inline void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

__device__ inline void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ inline void mbar_init_fence() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }
__device__ inline void mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred done;\nWAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
__device__ inline void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Arrives on bar once all of this thread's earlier cp.async have landed; counts
// as one of the barrier's expected arrivals (.noinc).
__device__ inline void cp_async_arrive(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
__device__ inline void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

// The tensor-copy engine (TMA): one arrival on bar that also expects `bytes`
// more to land on it; a 2-D box of a tensor map (a __grid_constant__
// parameter) at coordinates (x, y) into shared memory at dst, completing
// those bytes on bar. Rows outside the map arrive zero-filled.
__device__ inline void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}
__device__ inline void tma_load_2d(uint32_t dst, const void* map, int x, int y, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(x), "r"(y), "r"(bar)
      : "memory");
}

// A tensor copy of a tile of ROWS rows x D from a tile_map (box_rows = ROWS)
// at token row0, columns col0.. (the head's), into SW128 shared memory at dst:
// one arrival on bar expecting its bytes, then D/64 boxes completing on bar.
// One thread issues it.
template <int D, int ROWS>
__device__ inline void tma_tile(uint32_t dst, const CUtensorMap* map, int col0, int row0, uint32_t bar) {
  mbar_arrive_expect_tx(bar, ROWS * D * 2);
#pragma unroll
  for (int c = 0; c < D / 64; ++c) tma_load_2d(dst + c * ROWS * 128, map, col0 + c * 64, row0, bar);
}

// The two consumer warpgroups take turns to issue their products (named
// barriers 1 and 2, 256 threads: one warpgroup syncs, the other arrives):
// warpgroup cw waits for its turn, issues, then gives the turn to the other
// one, so that one's softmax runs under the other's products. Warpgroup 1
// gives warpgroup 0 the first turn; after its last, warpgroup 0 takes the one
// left over.
__device__ inline void turn_wait(int cw) {
  asm volatile("bar.sync %0, 256;\n" ::"r"(1 + cw) : "memory");
}
__device__ inline void turn_give(int cw) {
  asm volatile("bar.arrive %0, 256;\n" ::"r"(2 - cw) : "memory");
}

template <int N>
__device__ inline void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N>
__device__ inline void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}

// The accumulator operands of one wgmma: 32 (m64n64) or 64 (m64n128) fp32
// registers per thread, d[i][j], and their names in the instruction.
#define DUET_WGMMA_ACC4(d, i) "+f"(d[i][0]), "+f"(d[i][1]), "+f"(d[i][2]), "+f"(d[i][3])
#define DUET_WGMMA_ACC32(d)                                                                   \
  DUET_WGMMA_ACC4(d, 0), DUET_WGMMA_ACC4(d, 1), DUET_WGMMA_ACC4(d, 2), DUET_WGMMA_ACC4(d, 3), \
      DUET_WGMMA_ACC4(d, 4), DUET_WGMMA_ACC4(d, 5), DUET_WGMMA_ACC4(d, 6), DUET_WGMMA_ACC4(d, 7)
#define DUET_WGMMA_ACC64(d)                                                                     \
  DUET_WGMMA_ACC32(d), DUET_WGMMA_ACC4(d, 8), DUET_WGMMA_ACC4(d, 9), DUET_WGMMA_ACC4(d, 10),    \
      DUET_WGMMA_ACC4(d, 11), DUET_WGMMA_ACC4(d, 12), DUET_WGMMA_ACC4(d, 13), DUET_WGMMA_ACC4(d, 14), \
      DUET_WGMMA_ACC4(d, 15)
#define DUET_WGMMA_REGS32                                                   \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
#define DUET_WGMMA_REGS64                                                                \
  DUET_WGMMA_REGS32                                                                     \
  ", %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"

// The products (one asm per shape; accumulators in the m64nN
// layout, per warp 16 rows, d[i] = columns 8i.. as mma.sync's m16n8 C fragment).
// d (64 x 128) = A B (accumulate = 0) or d += A B: A 64 x 16 and B 16 x 128
// from shared memory descriptors, both K-major.
__device__ inline void wgmma_ss_m64n128(float (&d)[16][4], uint64_t a, uint64_t b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      DUET_WGMMA_REGS64
      "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : DUET_WGMMA_ACC64(d)
      : "l"(a), "l"(b), "r"(accumulate));
}

// d += A B: A 64 x 16 bf16 in registers (the accumulator layout, rounded),
// B 16 x 64 from a shared memory descriptor, N-major (imm-trans-b = 1).
__device__ inline void wgmma_rs_m64n64(float (&d)[8][4], const uint32_t (&a)[4], uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      DUET_WGMMA_REGS32
      "}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n"
      : DUET_WGMMA_ACC32(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
}

// d += A B: A 64 x 16 bf16 in registers (the accumulator layout, rounded),
// B 16 x 128 from a shared memory descriptor, N-major (imm-trans-b = 1).
__device__ inline void wgmma_rs_m64n128(float (&d)[16][4], const uint32_t (&a)[4], uint64_t b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      DUET_WGMMA_REGS64
      "}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : DUET_WGMMA_ACC64(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
}

// d (64 x 64) = A B (accumulate = 0) or d += A B: A 64 x 16 and B 16 x 64
// from shared memory descriptors, both K-major.
__device__ inline void wgmma_ss_m64n64(float (&d)[8][4], uint64_t a, uint64_t b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      DUET_WGMMA_REGS32
      "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : DUET_WGMMA_ACC32(d)
      : "l"(a), "l"(b), "r"(accumulate));
}

// ---- products over whole SW128 tiles, per consumer warpgroup (64 rows).
// acc (64 x N) = A Bᵀ, K = D: A = the 64 rows at `a` of an SW128 tile of
// a_rows rows (`a` = tile + first row · 128), B = the N rows at `b` of a tile
// of b_rows rows, both K-major; 16 columns of K = 32 bytes inside a 64-column
// slab, the next slab for k >= 64. Fenced, issued and committed as one group;
// not waited for.
// (Descriptors of addresses off bytes apart differ by off >> 4 in the start
// field, bits 0-13, which holds every shared-memory address >> 4 with no
// carry: each product's descriptor is the tile's plus a constant.)
template <int D, int N>
__device__ inline void gemm_ss(float (&acc)[N / 8][4], uint32_t a, int a_rows, uint32_t b, int b_rows) {
  static_assert(N == 64 || N == 128);
  wgmma_fence();
  const uint64_t da0 = sw128_desc(a, 16, 1024), db0 = sw128_desc(b, 16, 1024);
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const uint32_t off = (kk % 4) * 32;
    const uint64_t da = da0 + (((kk / 4) * a_rows * 128 + off) >> 4);
    const uint64_t db = db0 + (((kk / 4) * b_rows * 128 + off) >> 4);
    if constexpr (N == 128) wgmma_ss_m64n128(acc, da, db, kk > 0);
    else wgmma_ss_m64n64(acc, da, db, kk > 0);
  }
  wgmma_commit();
}

// acc (64 x D) += A B, K = 16·KK: A bf16 fragments in registers (the
// accumulator layout, to_a_fragments), B = the first 16·KK rows of an SW128
// tile of b_rows rows at b, N-major (N = D: LBO = one 64-column slab, SBO = 8
// rows; 16 rows = 2048 bytes). Fenced, issued and committed; not waited for.
template <int D, int KK>
__device__ inline void gemm_rs(float (&acc)[D / 8][4], const uint32_t (&a)[KK][4], uint32_t b, int b_rows) {
  wgmma_fence();
  const uint64_t db0 = sw128_desc(b, b_rows * 128, 1024);
#pragma unroll
  for (int kk = 0; kk < KK; ++kk) {
    const uint64_t db = db0 + ((kk * 16 * 128) >> 4);
    if constexpr (D == 64) wgmma_rs_m64n64(acc, a[kk], db);
    else wgmma_rs_m64n128(acc, a[kk], db);
  }
  wgmma_commit();
}

// ---- the kernels' shared memory, from a 1024-aligned base: kOnce tiles of
// kOnceRows x D loaded once, then a ring of kStages stages of two tiles (a, b)
// of kRows x D each (a[0..S), b[0..S)), kScalars int32/float arrays of kRows
// per stage, kOnceScalars arrays of kOnceRows loaded once, one int per stage
// (StepBoard), then the mbarriers (Ring). Tiles are SW128.
template <int D, int kOnce, int kOnceRows, int kRows, int kStages, int kScalars, int kOnceScalars = 0>
struct Layout {
  static constexpr uint32_t once_bytes = kOnceRows * D * 2, tile_bytes = kRows * D * 2;
  static constexpr uint32_t tiles = kOnce * once_bytes;
  static constexpr uint32_t scalars = tiles + 2 * kStages * tile_bytes;
  static constexpr uint32_t once_scalars = scalars + kScalars * kStages * kRows * 4;
  static constexpr uint32_t codes = once_scalars + kOnceScalars * kOnceRows * 4;
  static constexpr uint32_t bars = codes + 8 * ((kStages + 1) / 2);
  static constexpr size_t bytes = bars + 8 * (1 + 4 * kStages) + 1024;  // base rounded up to 1024
  static constexpr uint32_t once(int i) { return i * once_bytes; }
  static constexpr uint32_t a(int s) { return tiles + s * tile_bytes; }
  static constexpr uint32_t b(int s) { return tiles + (kStages + s) * tile_bytes; }
  static constexpr uint32_t scalar(int j, int s) { return scalars + (j * kStages + s) * kRows * 4; }
  static constexpr uint32_t once_scalar(int j) { return once_scalars + j * kOnceRows * 4; }
};


// The mbarriers at `bars`: `once` (the loaded-once tiles), per stage full_a,
// full_b (each completed by the producer's cp.async, tensor copies and posts)
// and empty (released by every consumer thread); empty_b releases tile b alone
// where the consumers hand the two tiles back at different times (the dQ
// pass: V once dP is in, K after the last dQ += dS K).
template <int kStages>
struct Ring {
  uint32_t bars;
  __device__ uint32_t once() const { return bars; }
  __device__ uint32_t full_a(int s) const { return bars + 8 * (1 + s); }
  __device__ uint32_t full_b(int s) const { return bars + 8 * (1 + kStages + s); }
  __device__ uint32_t empty(int s) const { return bars + 8 * (1 + 2 * kStages + s); }
  __device__ uint32_t empty_b(int s) const { return bars + 8 * (1 + 3 * kStages + s); }
  // Thread 0, then __syncthreads() by all. full_a completes with a_arrivals,
  // full_b with b_arrivals, once with once_arrivals: one per producer thread
  // whose cp.async land on it, plus one per tensor copy or post (StepBoard;
  // the dK/dV pass: 129 and 129, the 128 threads' lse / D_i and thread 0's
  // post with Q, dO; the dQ pass: 33 and 1, the K warp's 32 lanes and lane
  // 0's post with K, V's tensor copy; once: 128, the producer's cp.async).
  __device__ void init(uint32_t consumers, uint32_t a_arrivals, uint32_t b_arrivals,
                       uint32_t once_arrivals) const {
    mbar_init(once(), once_arrivals);
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full_a(s), a_arrivals);
      mbar_init(full_b(s), b_arrivals);
      mbar_init(empty(s), consumers);
      mbar_init(empty_b(s), consumers);
    }
    mbar_init_fence();
  }
};

extern __shared__ unsigned char dynamic_smem[];

// A kernel's start: its dynamic shared memory rounded up to 1024 bytes (base:
// the shared-space address, smem: the generic pointer) and the Ring at L::bars
// (arrivals: see Ring::init), initialised by thread 0 and published to the CTA
// (__syncthreads: call it from every thread, before the warpgroups part).
template <typename L, int kStages>
struct Cta {
  uint32_t base;
  unsigned char* smem;
  Ring<kStages> ring;
  __device__ Cta(uint32_t consumers, uint32_t a_arrivals, uint32_t b_arrivals, uint32_t once_arrivals = 128) {
    const uint32_t raw = smem_u32(dynamic_smem);
    base = (raw + 1023) & ~1023u;
    smem = dynamic_smem + (base - raw);
    ring = Ring<kStages>{base + L::bars};
    if (threadIdx.x == 0) ring.init(consumers, a_arrivals, b_arrivals, once_arrivals);
    __syncthreads();
  }
};

// ROWS rows of D bf16 from token row0 into an SW128 tile (rows past n zero),
// by the 128 producer threads: thread tid copies 16-byte chunk tid % (D/8)
// of rows tid / (D/8) + j·kStep; kStep is a multiple of 8, so the chunk's
// swizzled place in the row is the same in all of them and each copy is an
// address step, a bound check and the cp.async.
template <int D, int ROWS>
__device__ inline void load_tile(uint32_t dst, const bf16* g, int64_t stride, int row0, int n, int tid) {
  constexpr int kChunks = D / 8, kStep = 128 / kChunks;
  static_assert(128 % kChunks == 0 && kStep % 8 == 0 && ROWS % kStep == 0);
  const int r = tid / kChunks, ch = tid % kChunks, left = n - row0 - r;  // rows of this thread's left
  dst += sw128(ROWS, r, ch);
  const bf16* src = g + static_cast<int64_t>(row0 + r) * stride + ch * 8;
  const int64_t step = kStep * stride;
#pragma unroll
  for (int j = 0; j < ROWS / kStep; ++j) {
    const bool ok = j * kStep < left;
    cp_async16(dst + j * kStep * 128, ok ? src + j * step : g, ok);
  }
}

// visible_until and (with a window) positions of the 128 keys from k0 (zero
// past n_tokens), one per producer thread.
__device__ inline void load_kv_scalars(void* vu, void* pos, const MaskArgs& m, int k0, int tid) {
  load_scalars(vu, m.visible_until, 1, k0, m.n_tokens, tid);
  if (m.window > 0) load_scalars(pos, m.positions, 1, k0, m.n_tokens, tid);
}

// Consumers that are told their steps instead of working them out (the
// classification's global loads then stay off their critical path): per
// stage one int in shared memory (L::codes), the step's code (>= 0) or -1
// after the last step, written by producer thread 0 before its extra
// (releasing) arrival on full_a, the one that comes with its tensor copy.
template <int kStages>
struct StepBoard {
  const Ring<kStages>& ring;
  int32_t* codes;
  int tid;
  // The end, after `steps` steps: once the consumers released the next stage,
  // every thread that loads full_a's stages (tid from 0) arrives on its full_a
  // (in place of its cp.async) and thread 0 posts -1 (in place of its post);
  // then the thread's own copies are drained.
  __device__ void finish(int steps) const {
    const int s = steps % kStages;
    if (steps >= kStages) mbar_wait(ring.empty(s), ((steps / kStages) - 1) & 1);
    mbar_arrive(ring.full_a(s));
    if (tid == 0) {
      codes[s] = -1;
      mbar_arrive(ring.full_a(s));
    }
    cp_async_wait_all();
  }
};

// A key tile of 128 keys (plan granules 2t, 2t+1) for the queries qb (q_rows
// of them): Skip if both granules are skipped, Full if both are Full, else
// Partial; granules past n_tokens count as masked.
__device__ inline TileKind tile_kind128(const MaskArgs& m, const QueryBlock& qb, int q_rows, int t) {
  if (!m.classify) return TileKind::Partial;
  const int granules = (m.n_tokens + kGranule - 1) / kGranule;
  bool any = false, all_full = true;
#pragma unroll
  for (int g = 2 * t; g < 2 * t + 2; ++g) {
    if (g >= granules) {  // keys past the row's end: masked
      all_full = false;
      continue;
    }
    const TileKind k = tile_kind(m, qb, q_rows, g);
    any |= k != TileKind::Skip;
    all_full &= k == TileKind::Full;
  }
  return !any ? TileKind::Skip : all_full ? TileKind::Full : TileKind::Partial;
}

// The 128-key tiles a CTA of 128 queries from q0 steps over (the forward, the
// backward's dQ pass): the plan's range [first, last] halved (last is the
// diagonal, never skipped); next(t) is the first tile from t on that is not
// skipped (> last when none is left).
struct KeyStream {
  const MaskArgs& m;
  QueryBlock qb;
  int first, last;
  __device__ KeyStream(const MaskArgs& mask, int q0) : m(mask), qb(query_block(mask, q0, 128)) {
    const int g0 = q0 / kGranule, g1 = (qb.end - 1) / kGranule;
    first = m.classify ? min(m.stats[g0].first_tile, m.stats[g1].first_tile) / 2 : 0;
    last = g1 / 2;
  }
  __device__ TileKind kind(int t) const { return tile_kind128(m, qb, 128, t); }
  __device__ int next(int t) const {
    while (t <= last && kind(t) == TileKind::Skip) ++t;
    return t;
  }
  // f(t, kind) for each tile that is not skipped, in order, each classified once.
  template <typename F>
  __device__ void each(F f) const {
    for (int t = first; t <= last; ++t) {
      const TileKind k = kind(t);
      if (k != TileKind::Skip) f(t, k);
    }
  }
};

}  // namespace duet::backend::cuda::attn::sm90
