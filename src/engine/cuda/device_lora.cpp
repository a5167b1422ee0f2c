#include "engine/cuda/device_lora.hpp"

#include <algorithm>

#include "backend/cuda/lora.hpp"
#include "backend/lora_dropout.hpp"

namespace duet::engine::cuda {

namespace bc = duet::backend::cuda;
using bc::DType;

DeviceLora::DeviceLora(const model::ModelConfig& model, const LoraConfig& lora, const DeviceLayout& layout)
    : lora_(lora), scaling_(static_cast<float>(lora.scaling())) {
  for (size_t i = 0; i < kLoraModules.size(); ++i) {
    Module& m = modules_[i];
    const std::string name = kLoraModules[i];
    m.on = lora.targets(name);
    if (!m.on) continue;
    const LinearShape shape = lora_module_shape(model, name);
    m.in = shape.in, m.out = shape.out;
    for (int64_t l = 0; l < model.num_hidden_layers; ++l) {
      m.a.push_back(layout.offset(lora_a_name(l, name)));
      m.b.push_back(layout.offset(lora_b_name(l, name)));
    }
  }
}

void DeviceLora::carve(Arena& a, int64_t n) {
  int64_t widest = 0;
  for (const Module& m : modules_)
    if (m.on) widest = std::max(widest, m.in);
  x_drop_ = lora_.dropout > 0 ? a.take<bf16>(n * widest) : nullptr;
  g_ = lora_.dropout > 0 ? a.take<float>(n * widest) : nullptr;
  u_ = a.take<bf16>(n * lora_.r), du_ = a.take<bf16>(n * lora_.r);
}

const bf16* DeviceLora::dropped_input(const Pass& pass, int64_t layer, LoraModule m, const bf16* x, int64_t n,
                                      cudaStream_t s) {
  if (dropout(pass) == 0) return x;
  bc::LoraDropoutForward p;
  p.x = x, p.out = x_drop_, p.n_rows = n, p.dim = modules_[m].in;
  p.key = backend::lora_module_key(pass.dropout_key, layer, m), p.p = dropout(pass);
  bc::lora_dropout_forward(p, s);
  return x_drop_;
}

void DeviceLora::down_projection(const Pass& pass, int64_t layer, LoraModule m, const bf16* xd, int64_t n,
                                 bc::Gemm& gemm, cudaStream_t s) {
  const Module& M = modules_[m];
  bc::GemmParams p;  // u[n, r] = x_d[n, in] · A[r, in]ᵀ
  p.a = xd, p.b = pass.weights + M.a[static_cast<size_t>(layer)], p.b_trans = true, p.d = u_;
  p.m = n, p.n = lora_.r, p.k = M.in;
  gemm.run(p, s);
}

std::vector<bc::GemmParams> DeviceLora::products(int64_t n, bool backward) const {
  std::vector<bc::GemmParams> all;
  const int64_t r = lora_.r;
  const auto product = [&](int64_t m, int64_t cols, int64_t k, bool a_trans, bool b_trans, DType d_type) {
    bc::GemmParams p;
    p.m = m, p.n = cols, p.k = k, p.a_trans = a_trans, p.b_trans = b_trans, p.d_type = d_type;
    all.push_back(p);
  };
  for (const Module& M : modules_) {
    if (!M.on) continue;
    product(n, r, M.in, false, true, DType::BF16);   // u = x_d Aᵀ
    product(n, M.out, r, false, true, DType::BF16);  // y += s u Bᵀ
    if (!backward) continue;
    product(M.out, r, n, true, false, DType::F32);  // dB += s dyᵀ u
    product(n, r, M.out, false, false, DType::BF16);  // du = s dy B
    product(r, M.in, n, true, false, DType::F32);   // dA += duᵀ x_d
    product(n, M.in, r, false, false, DType::F32);  // dx += du A
    product(n, M.in, r, false, false, DType::BF16);
  }
  return all;
}

void DeviceLora::forward(const Pass& pass, int64_t layer, LoraModule m, const bf16* x, bf16* y, int64_t ldy,
                         int64_t n, bc::Gemm& gemm, cudaStream_t s) {
  const Module& M = modules_[m];
  if (!M.on || n == 0) return;
  down_projection(pass, layer, m, dropped_input(pass, layer, m, x, n, s), n, gemm, s);
  bc::GemmParams p;  // y[n, out] += s · u[n, r] · B[out, r]ᵀ
  p.a = u_, p.b = pass.weights + M.b[static_cast<size_t>(layer)], p.b_trans = true, p.d = y, p.ldd = ldy;
  p.m = n, p.n = M.out, p.k = lora_.r, p.alpha = scaling_, p.beta = 1.0f;
  gemm.run(p, s);
}

void DeviceLora::backward(const Pass& pass, int64_t layer, LoraModule m, const bf16* x, const bf16* dy, int64_t ldy,
                          void* dx, bool dx_f32, int64_t n, bc::Gemm& gemm, cudaStream_t s) {
  const Module& M = modules_[m];
  if (!M.on || n == 0) return;
  const auto li = static_cast<size_t>(layer);
  const bf16* xd = dropped_input(pass, layer, m, x, n, s);
  down_projection(pass, layer, m, xd, n, gemm, s);  // recomputed rather than kept
  bc::GemmParams p;  // dB[out, r] += s · dy[n, out]ᵀ · u[n, r]
  p.a = dy, p.lda = ldy, p.a_trans = true, p.b = u_, p.d = pass.grads + M.b[li], p.d_type = DType::F32;
  p.m = M.out, p.n = lora_.r, p.k = n, p.alpha = scaling_, p.beta = 1.0f;
  gemm.run(p, s);
  p = {};  // du[n, r] = s · dy[n, out] · B[out, r]
  p.a = dy, p.lda = ldy, p.b = pass.weights + M.b[li], p.d = du_;
  p.m = n, p.n = lora_.r, p.k = M.out, p.alpha = scaling_;
  gemm.run(p, s);
  p = {};  // dA[r, in] += du[n, r]ᵀ · x_d[n, in]
  p.a = du_, p.a_trans = true, p.b = xd, p.d = pass.grads + M.a[li], p.d_type = DType::F32;
  p.m = lora_.r, p.n = M.in, p.k = n, p.beta = 1.0f;
  gemm.run(p, s);
  const bool masked = dropout(pass) > 0;
  p = {};  // dx[n, in] += du[n, r] · A[r, in], or into g and then through the mask
  p.a = du_, p.b = pass.weights + M.a[li], p.m = n, p.n = M.in, p.k = lora_.r;
  if (masked) {
    p.d = g_, p.d_type = DType::F32;
  } else {
    p.d = dx, p.d_type = dx_f32 ? DType::F32 : DType::BF16, p.beta = 1.0f;
  }
  gemm.run(p, s);
  if (!masked) return;
  bc::LoraDropoutBackward b;
  b.g = g_, b.dx = dx, b.dx_f32 = dx_f32, b.n_rows = n, b.dim = M.in;
  b.key = backend::lora_module_key(pass.dropout_key, layer, m), b.p = dropout(pass);
  bc::lora_dropout_backward_add(b, s);
}

}  // namespace duet::engine::cuda
