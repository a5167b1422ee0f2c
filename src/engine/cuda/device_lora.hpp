#pragma once
// A LoRA adapter on the GPU, beside the DeviceTransformer's products: after
// each adapted product y += s · B A dropout(x), and its backward, with PEFT's
// formulas as the CPU op writes them (backend/cpu/lora.cpp):
//   forward   u = x_d Aᵀ,  y += s u Bᵀ
//   backward  dB += s dyᵀ u,  du = s dy B,  dA += duᵀ x_d,  dx += mask(du A)
// Every product goes through Gemm (bf16 operands, fp32 accumulation); A and
// B's gradients are fp32 and accumulate; u and du are bf16, the operands of
// the next product (PEFT's bf16 modules round them too). Dropout's mask comes
// from the same counter-based function as the CPU's (backend/lora_dropout.hpp).
#include <array>
#include <cstdint>
#include <vector>

#include "backend/cuda/gemm.hpp"
#include "engine/cuda/device_memory.hpp"
#include "engine/device_layout.hpp"
#include "engine/lora.hpp"
#include "model/config.hpp"

namespace duet::engine::cuda {

using backend::cuda::bf16;

class DeviceLora {
 public:
  // adapter_layout: where each A and B lives in the adapter's device buffers.
  DeviceLora(const model::ModelConfig& model, const LoraConfig& lora, const DeviceLayout& adapter_layout);

  // Scratch for batches of up to max_tokens (the dropped input, u, du, dx's mask input).
  void carve(Arena& arena, int64_t max_tokens);

  // One pass: the adapter's bf16 weights and fp32 gradients (null for a
  // forward alone), in adapter_layout; dropout only while training.
  struct Pass {
    const bf16* weights = nullptr;
    float* grads = nullptr;
    bool training = false;
    uint64_t dropout_key = 0;  // lora_dropout_key(...) of this batch
  };

  bool adapts(LoraModule m) const { return modules_[m].on; }
  // y [n, out] (row stride ldy) += the adapter's output for x [n, in] (dense).
  void forward(const Pass& pass, int64_t layer, LoraModule m, const bf16* x, bf16* y, int64_t ldy, int64_t n,
               backend::cuda::Gemm& gemm, cudaStream_t s);
  // Given dy [n, out] (row stride ldy): A's and B's gradients +=, and
  // dx [n, in] (dense, fp32 or bf16) += the adapter's share.
  void backward(const Pass& pass, int64_t layer, LoraModule m, const bf16* x, const bf16* dy, int64_t ldy, void* dx,
                bool dx_f32, int64_t n, backend::cuda::Gemm& gemm, cudaStream_t s);
  // The products forward (and backward) runs for n tokens, pointers unset
  // (DeviceTransformer::products); dx in both types, as dropout and the
  // module decide.
  std::vector<backend::cuda::GemmParams> products(int64_t n, bool backward) const;

 private:
  struct Module {
    bool on = false;
    int64_t in = 0, out = 0;
    std::vector<size_t> a, b;  // per layer: offsets of A [r, in] and B [out, r]
  };
  double dropout(const Pass& pass) const { return pass.training ? lora_.dropout : 0.0; }
  // x itself, or its dropped-out copy in scratch.
  const bf16* dropped_input(const Pass& pass, int64_t layer, LoraModule m, const bf16* x, int64_t n, cudaStream_t s);
  // u [n, r] = x_d Aᵀ
  void down_projection(const Pass& pass, int64_t layer, LoraModule m, const bf16* xd, int64_t n,
                       backend::cuda::Gemm& gemm, cudaStream_t s);

  LoraConfig lora_;
  float scaling_;
  std::array<Module, kLoraModules.size()> modules_;
  bf16 *x_drop_ = nullptr, *u_ = nullptr, *du_ = nullptr;
  float* g_ = nullptr;
};

}  // namespace duet::engine::cuda
