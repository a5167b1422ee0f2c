// LoRA dropout: one thread per element, the mask recomputed from the key.
#include "backend/cuda/lora.hpp"
#include "backend/cuda/ops_device.cuh"
#include "backend/cuda/ops_internal.hpp"
#include "backend/lora_dropout.hpp"

namespace duet::backend::cuda {

namespace {

__global__ void dropout_forward_kernel(const bf16* x, bf16* out, int64_t n, uint64_t key, double p, float scale) {
  const int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (i >= n) return;
  out[i] = lora_dropout_keeps(key, static_cast<uint64_t>(i), p) ? __float2bfloat16(__bfloat162float(x[i]) * scale)
                                                                : __float2bfloat16(0.0f);
}

template <typename T>
__global__ void dropout_backward_kernel(const float* g, T* dx, int64_t n, uint64_t key, double p, float scale) {
  const int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (i >= n || !lora_dropout_keeps(key, static_cast<uint64_t>(i), p)) return;
  if constexpr (sizeof(T) == 4) {
    dx[i] += g[i] * scale;
  } else {
    dx[i] = __float2bfloat16(__bfloat162float(dx[i]) + g[i] * scale);
  }
}

constexpr int kThreads = 256;

}  // namespace

void lora_dropout_forward(const LoraDropoutForward& p, cudaStream_t stream) {
  detail::validate(p);
  const int64_t n = p.n_rows * p.dim;
  if (n == 0) return;
  dropout_forward_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(p.x, p.out, n, p.key, p.p,
                                                                         static_cast<float>(1.0 / (1.0 - p.p)));
  check_launch("lora dropout");
}

void lora_dropout_backward_add(const LoraDropoutBackward& p, cudaStream_t stream) {
  detail::validate(p);
  const int64_t n = p.n_rows * p.dim;
  if (n == 0) return;
  const auto scale = static_cast<float>(1.0 / (1.0 - p.p));
  if (p.dx_f32)
    dropout_backward_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(p.g, static_cast<float*>(p.dx), n, p.key,
                                                                            p.p, scale);
  else
    dropout_backward_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(p.g, static_cast<bf16*>(p.dx), n, p.key,
                                                                            p.p, scale);
  check_launch("lora dropout backward");
}

}  // namespace duet::backend::cuda
