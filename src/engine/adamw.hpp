#pragma once
// AdamW over a ParameterSet (fp32 moments in the same flat layout), with
// gradient clipping by the global norm, as torch's clip_grad_norm_ + AdamW.
#include "engine/parameters.hpp"

namespace duet::engine {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  double max_grad_norm = 1.0;  // <= 0: no clipping
};

class AdamW {
 public:
  AdamW(const model::ModelConfig& config, AdamWOptions options);
  // Moments for any parameter set of these slots (a LoRA adapter).
  AdamW(std::vector<TensorSlot> slots, AdamWOptions options);

  // One step at learning rate `lr`; returns the global gradient norm before
  // clipping (TRL's grad_norm).
  double step(ParameterSet<float>& params, const ParameterSet<float>& grads, double lr);

  int64_t steps() const { return steps_; }
  ParameterSet<float>& first_moment() { return m_; }
  ParameterSet<float>& second_moment() { return v_; }
  void set_steps(int64_t steps) { steps_ = steps; }

 private:
  AdamWOptions options_;
  ParameterSet<float> m_, v_;
  int64_t steps_ = 0;
};

}  // namespace duet::engine
