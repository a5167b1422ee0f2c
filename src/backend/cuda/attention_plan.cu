// The attention plan (per batch, on the GPU): per granule of 64 tokens the
// min/max of visible_until and of positions, then per query granule the first
// and last key tile that classify_tile does not skip. Also the host checks
// shared by the forward and the backward.
#include "backend/cuda/attention_common.cuh"

#include <climits>

namespace duet::backend::cuda {

namespace attn {
namespace {

// One block of 64 threads per granule.
__global__ void granule_stats_kernel(const int32_t* visible_until, const int32_t* positions,
                                     int n, GranuleStats* stats) {
  __shared__ int red[2][4];
  const int i = blockIdx.x * kGranule + threadIdx.x, lane = threadIdx.x % 32;
  const bool ok = i < n;
  const int vu = ok ? visible_until[i] : 0, pos = ok && positions ? positions[i] : 0;
  int v[4] = {ok ? vu : INT_MAX, ok ? vu : INT_MIN, ok ? pos : INT_MAX, ok ? pos : INT_MIN};
  v[0] = __reduce_min_sync(0xffffffffu, v[0]);
  v[1] = __reduce_max_sync(0xffffffffu, v[1]);
  v[2] = __reduce_min_sync(0xffffffffu, v[2]);
  v[3] = __reduce_max_sync(0xffffffffu, v[3]);
  if (lane == 0)
    for (int k = 0; k < 4; ++k) red[threadIdx.x / 32][k] = v[k];
  __syncthreads();
  if (threadIdx.x == 0) {
    GranuleStats& s = stats[blockIdx.x];
    s.min_vu = min(red[0][0], red[1][0]);
    s.max_vu = max(red[0][1], red[1][1]);
    s.min_pos = min(red[0][2], red[1][2]);
    s.max_pos = max(red[0][3], red[1][3]);
  }
}

// One block per query granule: the non-skipped key tiles lie in [first, last]
// (last is the diagonal one: every query sees itself).
__global__ void tile_range_kernel(GranuleStats* stats, int n, int window) {
  __shared__ int first, last;
  const int g = blockIdx.x;
  if (threadIdx.x == 0) first = g, last = g;
  __syncthreads();
  MaskArgs m{};
  m.stats = stats;
  m.n_tokens = n;
  const QueryBlock q = query_block(m, g * kGranule, kGranule);
  for (int t = threadIdx.x; t < g; t += blockDim.x) {
    const GranuleStats& s = stats[t];
    const KeyTile k{t * kGranule, min((t + 1) * kGranule, n), s.min_vu, s.max_vu, s.min_pos,
                    s.max_pos};
    if (classify_tile(q, k, window) != TileKind::Skip) atomicMin(&first, t);
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    stats[g].first_tile = first;
    stats[g].last_tile = last;
  }
}

}  // namespace

void check_rows(const char* op, const char* name, const void* data, int64_t stride, int64_t row) {
  using namespace backend::detail;
  require_stride(op, name, stride, row);
  if (reinterpret_cast<uintptr_t>(data) % 16 != 0 || stride % 8 != 0)
    fail("{}: {} must be 16-byte aligned with a row stride that is a multiple of 8 elements "
         "(got stride {})", op, name, stride);
}

void check_qkvo(const char* op, const AttentionShape& s, const void* q, int64_t q_stride,
                const void* k, int64_t k_stride, const void* v, int64_t v_stride, const void* o,
                int64_t o_stride) {
  check_rows(op, "q", q, q_stride, s.q_row());
  check_rows(op, "k", k, k_stride, s.kv_row());
  check_rows(op, "v", v, v_stride, s.kv_row());
  check_rows(op, "o", o, o_stride, s.q_row());
  for (auto [name, ptr] : {std::pair<const char*, const void*>{"q", q}, {"k", k}, {"v", v}, {"o", o}})
    backend::detail::require_data(op, name, ptr, s.n_tokens);
}

MaskArgs mask_args(const AttentionShape& s, void* workspace) {
  MaskArgs m{};
  m.visible_until = s.visible_until;
  m.positions = s.window > 0 ? s.positions : nullptr;
  m.stats = static_cast<const GranuleStats*>(workspace);
  m.n_tokens = static_cast<int>(s.n_tokens);
  m.window = static_cast<int>(std::min<int64_t>(s.window, INT_MAX));
  m.classify = s.classify_tiles;
  return m;
}

}  // namespace attn

void attention_check_supported(const AttentionShape& s) {
  s.validate("attention (CUDA)");
  if (s.head_dim != 64 && s.head_dim != 128)
    fail("attention (CUDA): head_dim {} is not supported: the GPU kernels are built for head "
         "dims 64 and 128 (run such a model on the CPU engine, or add an instantiation in "
         "src/backend/cuda/attention_*.cu)", s.head_dim);
}

size_t attention_workspace_bytes(const AttentionShape& s) {
  return attn::PlanLayout(s).total;
}

void attention_plan(const AttentionShape& s, void* workspace, cudaStream_t stream) {
  attention_check_supported(s);
  if (s.n_tokens == 0) return;
  if (workspace == nullptr) fail("attention plan: workspace is null");
  const int n = static_cast<int>(s.n_tokens), granules = static_cast<int>(attn::n_granules(n));
  auto* stats = static_cast<attn::GranuleStats*>(workspace);
  attn::granule_stats_kernel<<<granules, attn::kGranule, 0, stream>>>(
      s.visible_until, s.window > 0 ? s.positions : nullptr, n, stats);
  check_launch("attention plan (tile statistics)");
  attn::tile_range_kernel<<<granules, 128, 0, stream>>>(stats, n, attn::mask_args(s, workspace).window);
  check_launch("attention plan (tile ranges)");
  // The Hopper forward's work counter starts at zero (each forward leaves it so).
  check(cudaMemsetAsync(static_cast<unsigned char*>(workspace) + attn::PlanLayout(s).counter_offset, 0, 8, stream),
        "attention plan: cudaMemsetAsync");
}

}  // namespace duet::backend::cuda
