#pragma once
// Device helpers shared by the CUDA ops' kernels: vector loads (16 bytes at a
// time where the row allows it) and deterministic block reductions (a fixed
// shuffle tree, then a fixed tree over warps: the same bits every run).
#include <cuda_bf16.h>

#include <cstdint>

namespace duet::backend::cuda::dev {

using bf16 = __nv_bfloat16;

// N consecutive values widened to float: N = 8 is one 16-byte load of bf16.
template <int N>
__device__ __forceinline__ void load(const bf16* p, float* out) {
  if constexpr (N == 8) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = __bfloat1622float2(h[i]);
      out[2 * i] = f.x;
      out[2 * i + 1] = f.y;
    }
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) out[i] = __bfloat162float(p[i]);
  }
}

// Rounds to bf16 (nearest even) and stores N consecutive values.
template <int N>
__device__ __forceinline__ void store(bf16* p, const float* in) {
  if constexpr (N == 8) {
    uint4 raw;
    __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) h[i] = __floats2bfloat162_rn(in[2 * i], in[2 * i + 1]);
    *reinterpret_cast<uint4*>(p) = raw;
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) p[i] = __float2bfloat16_rn(in[i]);
  }
}

template <int N>
__device__ __forceinline__ void load(const float* p, float* out) {
  if constexpr (N % 4 == 0) {
#pragma unroll
    for (int i = 0; i < N; i += 4) {
      const float4 f = *reinterpret_cast<const float4*>(p + i);
      out[i] = f.x, out[i + 1] = f.y, out[i + 2] = f.z, out[i + 3] = f.w;
    }
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) out[i] = p[i];
  }
}

template <int N>
__device__ __forceinline__ void store(float* p, const float* in) {
  if constexpr (N % 4 == 0) {
#pragma unroll
    for (int i = 0; i < N; i += 4) *reinterpret_cast<float4*>(p + i) = make_float4(in[i], in[i + 1], in[i + 2], in[i + 3]);
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) p[i] = in[i];
  }
}

// x rounded to bf16 and widened back: what an op with a bf16 output keeps.
__device__ __forceinline__ float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

// Threads per block for rows of `vectors` work items: a multiple of 32, at most `max_threads`.
inline unsigned threads_for(int64_t vectors, int max_threads) {
  int64_t t = (vectors + 31) / 32 * 32;
  if (t < 32) t = 32;
  return static_cast<unsigned>(t < max_threads ? t : max_threads);
}

struct Sum {
  template <typename T>
  __device__ T operator()(T a, T b) const { return a + b; }
};
struct Max {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

template <typename T, typename Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Reduces v over the block (blockDim.x a multiple of 32, at most 1024); every
// thread gets the result. `scratch` holds 32 T in shared memory; the call
// synchronises, so scratch may be reused by the next call.
template <typename T, typename Op>
__device__ T block_reduce(T v, Op op, T identity, T* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
  v = warp_reduce(v, op);
  __syncthreads();  // scratch free (a previous call may still be reading it)
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < n_warps ? scratch[lane] : identity;
  return warp_reduce(v, op);
}

}  // namespace duet::backend::cuda::dev
