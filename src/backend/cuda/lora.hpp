#pragma once
// LoRA dropout on the GPU (backend/lora.hpp has the op; the adapter's products
// go through Gemm, engine/cuda/device_lora.*). The mask is
// backend::lora_dropout_keeps(key, i, p) over the dense index i = row·dim + col,
// the same function the CPU op calls, so both engines drop the same elements.
#include <cstdint>

#include "backend/cuda/common.hpp"

namespace duet::backend::cuda {

// out = x ⊙ mask / (1 - p), bf16 [n_rows, dim] both, dense.
struct LoraDropoutForward {
  const bf16* x = nullptr;
  bf16* out = nullptr;
  int64_t n_rows = 0, dim = 0;
  uint64_t key = 0;
  double p = 0.0;  // in (0, 1)
};
void lora_dropout_forward(const LoraDropoutForward& p, cudaStream_t stream);

// dx += g ⊙ mask / (1 - p): g fp32 [n_rows, dim] (the gradient of the dropped
// input), dx fp32 or bf16 [n_rows, dim], dense.
struct LoraDropoutBackward {
  const float* g = nullptr;
  void* dx = nullptr;
  bool dx_f32 = true;
  int64_t n_rows = 0, dim = 0;
  uint64_t key = 0;
  double p = 0.0;
};
void lora_dropout_backward_add(const LoraDropoutBackward& p, cudaStream_t stream);

}  // namespace duet::backend::cuda
