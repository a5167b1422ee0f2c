// Conversions and fills (fp32 master -> bf16 working copies, zeroing gradients, adding gradients).
#include "backend/cuda/layers.hpp"
#include "backend/cuda/ops_internal.hpp"
#include "backend/splitmix64.hpp"

namespace duet::backend::cuda {

namespace {
__global__ void convert_kernel(const float* in, bf16* out, int64_t n) {
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    out[i] = __float2bfloat16_rn(in[i]);
}

__global__ void add_kernel(const float* in, float* out, int64_t n) {
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    out[i] += in[i];
}

__global__ void fill_kernel(float* out, float value, int64_t n) {
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    out[i] = value;
}

// Counter-based normal draws: element i of stream `seed` is a pure function of
// (seed, i), so the values do not depend on the launch shape.
__global__ void normal_kernel(float* out, float std, uint64_t seed, int64_t n) {
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    const uint64_t r = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(i)));
    const float u1 = (static_cast<float>(r >> 40) + 1.0f) * (1.0f / 16777217.0f);  // (0, 1]
    const float u2 = static_cast<float>((r >> 16) & 0xFFFFFFu) * (1.0f / 16777216.0f);
    out[i] = std * sqrtf(-2.0f * logf(u1)) * cospif(2.0f * u2);  // Box-Muller
  }
}

constexpr int kThreads = 256;
// Grid-stride loops over at most this many blocks.
unsigned blocks_for(int64_t n) {
  const unsigned g = grid_for(n, kThreads);
  return g < 65536u ? g : 65536u;
}
}  // namespace

void convert_f32_to_bf16(const float* in, bf16* out, int64_t n, cudaStream_t stream) {
  detail::validate_conversion("convert_f32_to_bf16", in, true, out, n);
  if (n == 0) return;
  convert_kernel<<<blocks_for(n), kThreads, 0, stream>>>(in, out, n);
  check_launch("convert_f32_to_bf16");
}

void add_f32(const float* in, float* out, int64_t n, cudaStream_t stream) {
  detail::validate_conversion("add_f32", in, true, out, n);
  if (n == 0) return;
  add_kernel<<<blocks_for(n), kThreads, 0, stream>>>(in, out, n);
  check_launch("add_f32");
}

void fill_normal_f32(float* out, float std, uint64_t seed, int64_t n, cudaStream_t stream) {
  detail::validate_conversion("fill_normal_f32", nullptr, false, out, n);
  if (n == 0) return;
  normal_kernel<<<blocks_for(n), kThreads, 0, stream>>>(out, std, seed, n);
  check_launch("fill_normal_f32");
}

void fill_f32(float* out, float value, int64_t n, cudaStream_t stream) {
  detail::validate_conversion("fill_f32", nullptr, false, out, n);
  if (n == 0) return;
  fill_kernel<<<blocks_for(n), kThreads, 0, stream>>>(out, value, n);
  check_launch("fill_f32");
}

}  // namespace duet::backend::cuda
