// Hopper forward (sm_90a): one CTA of three warpgroups per (query head, 128
// queries). Warpgroup 0 is the producer: it loads Q once (cp.async) and, per
// non-skipped key tile of 128, K and V with the tensor-copy engine (TMA,
// issued by one thread) and the keys' visible_until / positions (cp.async)
// into a ring of 128-byte-swizzled stages (2 at hd128, 3 at hd64) completing
// on mbarriers, and posts each tile (its index and whether it is Partial) to
// the consumers; K goes back to it after S = Q Kᵀ, V after O += P V.
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
// case, so classification only saves work.
#include "backend/cuda/attention_sm90.cuh"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "backend/cuda/attention_forward_sm90.hpp"

namespace duet::backend::cuda {

namespace attn::sm90 {
namespace {

constexpr int kRows = 128;   // queries per CTA: two consumer warpgroups of 64
constexpr int kTileN = 128;  // keys per tile: two plan granules
// Ring stages: 2 at hd128 (160 KB with Q), 3 at hd64 (112 KB).
template <int D>
constexpr int kStages = D == 64 ? 3 : 2;
constexpr int kThreads = 384;
constexpr int kConsumers = 256;
constexpr int kProducerRegs = 56, kConsumerRegs = 224;  // 128·56 + 256·224 ≤ 65536

struct Args {
  CUtensorMap k_map, v_map;  // K and V in boxes of 64 columns x 128 keys, 128-byte swizzle (tile_map)
  const bf16* q;
  bf16* o;
  float* lse;
  int64_t q_stride, o_stride;
  int n_q_heads, rep;
  float scale_log2;
  MaskArgs m;
};

// Shared memory (Layout): Q once [D/64][128][64]; per stage K (a) and V (b)
// [D/64][128][64] (SW128), visible_until and positions [128] int32; the
// mbarriers: once = Q, full_a = K (+ scalars), full_b = V, empty.
template <int D>
using Smem = Layout<D, 1, kRows, kTileN, kStages<D>, 2>;

template <int D>
__global__ void __launch_bounds__(kThreads, 1) forward_sm90_kernel(const __grid_constant__ Args a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using L = Smem<D>;
  constexpr int S = kStages<D>;
  const Cta<L, S> cta(kConsumers, true, 1);  // tiles posted to the consumers; V by one tensor copy
  const uint32_t base = cta.base;
  unsigned char* smem = cta.smem;
  const Ring<S>& ring = cta.ring;

  const int tid = threadIdx.x, wg = tid / 128;
  const int n = a.m.n_tokens, window = a.m.window;
  // Query blocks in the grid's slow dimension, last first: the longest rows of
  // every head start first.
  const int block = gridDim.y - 1 - blockIdx.y;
  const int h = blockIdx.x, kvh = h / a.rep, q0 = block * kRows;
  const StepBoard<S> board{ring, reinterpret_cast<int32_t*>(smem + L::codes), tid};

  if (wg == 0) {  // ---- producer
    setmaxnreg_dec<kProducerRegs>();
    const KeyStream keys(a.m, q0);
    load_tile<D, kRows>(base + L::once(0), a.q + h * D, a.q_stride, q0, n, tid);
    cp_async_arrive(ring.once());
    // Per tile t: the keys' visible_until / positions by the 128 threads'
    // cp.async (full_a's 128 arrivals), K and V by the tensor-copy engine,
    // issued by thread 0 (its arrival on full_a posts the tile).
    auto copy = [&](uint32_t dst, const CUtensorMap* map, int t, uint32_t bar) {
      mbar_arrive_expect_tx(bar, kTileN * D * 2);
#pragma unroll
      for (int c = 0; c < D / 64; ++c)
        tma_load_2d(dst + c * kTileN * 128, map, kvh * D + c * 64, t * kTileN, bar);
    };
    int i = 0;
    for (int t = keys.next(keys.first); t <= keys.last; t = keys.next(t + 1), ++i) {
      const int s = i % S;
      const uint32_t parity = ((i / S) - 1) & 1;
      if (i >= S) mbar_wait(ring.empty(s), parity);
      load_kv_scalars(smem + L::scalar(0, s), smem + L::scalar(1, s), a.m, t * kTileN, tid);
      cp_async_arrive(ring.full_a(s));
      if (tid == 0) {
        board.codes[s] = 2 * t + (keys.kind(t) == TileKind::Partial);
        copy(base + L::a(s), &a.k_map, t, ring.full_a(s));
        if (i >= S) mbar_wait(ring.empty_b(s), parity);
        copy(base + L::b(s), &a.v_map, t, ring.full_b(s));
      }
    }
    board.finish(i);
    return;
  }

  // ---- consumers: warpgroup cw owns query rows q0 + 64 cw .. + 63
  setmaxnreg_inc<kConsumerRegs>();
  const int cw = wg - 1, warp = (tid / 32) % 4, lane = tid % 32;
  const int row0 = q0 + cw * 64 + warp * 16 + lane / 4;
  const int rows[2] = {row0, row0 + 8};
  int pos[2] = {0, 0};
  if (window > 0)
    for (int r = 0; r < 2; ++r) pos[r] = rows[r] < n ? a.m.positions[rows[r]] : 0;

  float o[D / 8][4];
  zero(o);
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.f, 0.f};
  const uint32_t q_base = base + L::once(0) + cw * 64 * 128;
  float sc[kTileN / 8][4];      // S = Q Kᵀ of a tile (64 x 128 per warpgroup), then P in fp32
  uint32_t pa[kTileN / 16][4];  // P in bf16: the A operand of O += P V
  float alpha[2];               // the rows' rescale factor of the last softmax
  // S of the tile posted in stage st (code 2 t + Partial), issued, not waited for.
  auto issue_s = [&](int st) {
    fence_proxy_async();
    gemm_ss<D, kTileN>(sc, q_base, kRows, base + L::a(st), kTileN);
  };
  // The masked online softmax of S (tile code >> 1, in stage st): P in sc
  // (fp32), the running max and sum updated, alpha = the factor O must take.
  auto softmax = [&](int st, int code) {
    if (code & 1) {  // Partial: hidden scores to -inf, in a pass of its own (off the Full tiles' path)
      const int t = code >> 1;
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

  // Tile i: S_i issued, then O += P_{i-1} V_{i-1} right behind it; the
  // softmax of S_i runs while the tensor cores do P_{i-1} V_{i-1} (FA3's
  // intra-warpgroup overlap); then O is rescaled and P_i rounded into pa.
  // K of a stage goes back to the producer after the softmax (which reads the
  // stage's visible_until / positions), V after its product. Every wait sits
  // inside the iteration (no wgmma in flight over the loop edge, which would
  // serialise them, C7515).
  if (cw == 1) turn_give(cw);  // warpgroup 0 issues first
  mbar_wait(ring.once(), 0);
  mbar_wait(ring.full_a(0), 0);
  int code = board.codes[0];  // never -1: the diagonal tile is always there
  turn_wait(cw);
  issue_s(0);
  turn_give(cw);
  wgmma_wait<0>();
  pin(sc);
  softmax(0, code);  // o is zero: no rescale
  mbar_arrive(ring.empty(0));
  to_a_fragments<kTileN / 8>(pa, sc);
  int i = 1;
  for (;; ++i) {
    const int s = i % S, sp = (i - 1) % S;
    mbar_wait(ring.full_a(s), (i / S) & 1);
    code = board.codes[s];
    if (code < 0) break;
    mbar_wait(ring.full_b(sp), ((i - 1) / S) & 1);
    turn_wait(cw);
    issue_s(s);
    fence_proxy_async();
    pin(o);
    pin(pa);
    gemm_rs<D, kTileN / 16>(o, pa, base + L::b(sp), kTileN);
    turn_give(cw);
    wgmma_wait<1>();  // S_i
    pin(sc);
    softmax(s, code);
    mbar_arrive(ring.empty(s));
    wgmma_wait<0>();  // O += P_{i-1} V_{i-1}
    pin(o);
    pin(pa);
    mbar_arrive(ring.empty_b(sp));
    // o · 1 = o: skipped where no row of the warp has a new maximum
    if (!__all_sync(0xffffffffu, alpha[0] == 1.f && alpha[1] == 1.f)) {
#pragma unroll
      for (int nt = 0; nt < D / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) o[nt][e] *= alpha[e / 2];
    }
    to_a_fragments<kTileN / 8>(pa, sc);
  }
  {  // O += P V of the last tile
    const int sp = (i - 1) % S;
    mbar_wait(ring.full_b(sp), ((i - 1) / S) & 1);
    turn_wait(cw);
    fence_proxy_async();
    pin(o);
    pin(pa);
    gemm_rs<D, kTileN / 16>(o, pa, base + L::b(sp), kTileN);
    turn_give(cw);
    if (cw == 0) turn_wait(cw);  // warpgroup 1's last turn, so that none is left over
    wgmma_wait<0>();
    pin(o);
    pin(pa);
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
  store_rows<D>(a.o + h * D, a.o_stride, o, q0 + cw * 64 + warp * 16, n, lane, inv[0], inv[1]);
#else
  __trap();  // built for sm_90a only
#endif
}

template <int D>
void launch(const Args& args, int n_tokens, int n_q_heads, cudaStream_t stream) {
  constexpr size_t bytes = Smem<D>::bytes;
  static const bool once = (allow_shared(forward_sm90_kernel<D>, bytes), true);
  (void)once;
  const dim3 grid(n_q_heads, (n_tokens + kRows - 1) / kRows);
  forward_sm90_kernel<D><<<grid, kThreads, bytes, stream>>>(args);
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
  const attn::sm90::Args a{attn::sm90::tile_map(p.k, p.k_row_stride, p.n_tokens, width, attn::sm90::kTileN),
                           attn::sm90::tile_map(p.v, p.v_row_stride, p.n_tokens, width, attn::sm90::kTileN),
                           p.q, p.o, p.lse, p.q_row_stride, p.o_row_stride,
                           static_cast<int>(p.n_q_heads), static_cast<int>(p.n_q_heads / p.n_kv_heads),
                           static_cast<float>(attn::kLog2e / std::sqrt(static_cast<double>(p.head_dim))),
                           attn::mask_args(p, p.workspace)};
  const int n = static_cast<int>(p.n_tokens), hq = static_cast<int>(p.n_q_heads);
  if (p.head_dim == 64) attn::sm90::launch<64>(a, n, hq, stream);
  else attn::sm90::launch<128>(a, n, hq, stream);
}

}  // namespace duet::backend::cuda
