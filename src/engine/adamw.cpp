#include "engine/adamw.hpp"

#include <vector>

#include "backend/adamw.hpp"

namespace duet::engine {

AdamW::AdamW(const model::ModelConfig& config, AdamWOptions options) : AdamW(layout_parameters(config), options) {}

AdamW::AdamW(std::vector<TensorSlot> slots, AdamWOptions options) : options_(options), m_(slots), v_(std::move(slots)) {}

double AdamW::step(ParameterSet<float>& params, const ParameterSet<float>& grads, double lr) {
  std::vector<backend::GradView<float>> views;
  for (const auto& s : grads.slots())
    views.push_back({grads.values().data() + s.offset, static_cast<int64_t>(s.numel)});
  const double norm = backend::cpu::global_grad_norm<float>(views);
  const double scale = options_.max_grad_norm > 0 ? backend::clip_coefficient(norm, options_.max_grad_norm) : 1.0;
  ++steps_;
  for (const auto& s : params.slots()) {
    backend::AdamWParams<float> p;
    p.param = params.values().data() + s.offset;
    p.grad = grads.values().data() + s.offset;
    p.m = m_.values().data() + s.offset;
    p.v = v_.values().data() + s.offset;
    p.n = static_cast<int64_t>(s.numel);
    p.lr = lr, p.beta1 = options_.beta1, p.beta2 = options_.beta2, p.eps = options_.eps;
    p.weight_decay = options_.weight_decay, p.decay = s.decay;
    p.step = steps_, p.grad_scale = scale;
    backend::cpu::adamw_step(p);
  }
  return norm;
}

}  // namespace duet::engine
