#pragma once
// The fp32 CPU engine: the reference every faster engine is tested against.
// With LoRA the model's weights are a frozen base (no gradients, no moments)
// and an adapter is trained; the reference is the base with the adapter off.
#include <memory>
#include <optional>

#include "engine/engine.hpp"
#include "engine/transformer.hpp"

namespace duet::engine {

class CpuEngine final : public Engine {
 public:
  explicit CpuEngine(const EngineOptions& options);

  const model::ModelConfig& config() const override { return model_.config(); }
  bool has_reference() const override { return reference_ != nullptr || reference_is_base_; }
  std::vector<ResponseLogp> score_policy(const Batch& batch) override;
  std::vector<ResponseLogp> score_reference(const Batch& batch) override;
  void zero_grad() override { grads_.fill(0.0f); }
  void backprop(const Batch& batch, std::span<const double> d_response) override;
  const ParameterSet<float>& gradients() override { return grads_; }
  double optimizer_step(double lr) override { return optimizer_.step(trained(), grads_, lr); }
  ParameterSet<float>& master_weights() override { return trained(); }
  AdamW& optimizer() override { return optimizer_; }
  void state_changed() override {}  // the host copy is the state

  const LoraConfig* lora() const override { return lora_ ? &*lora_ : nullptr; }
  const ParameterSet<float>& base_weights() override { return params_; }
  void set_training(bool on) override { training_ = on; }

 private:
  ParameterSet<float>& trained() { return adapter_ ? *adapter_ : params_; }
  LoraPass<float> adapter_pass(const Batch& batch);

  Transformer<float> model_;
  ParameterSet<float> params_;  // the model, or the frozen base under an adapter
  std::optional<LoraConfig> lora_;
  std::unique_ptr<ParameterSet<float>> adapter_;
  ParameterSet<float> grads_;  // of the trained weights: the model's or the adapter's
  std::unique_ptr<ParameterSet<float>> reference_;
  bool reference_is_base_ = false;
  Workspace<float> workspace_;
  AdamW optimizer_;  // of the trained weights
  uint64_t lora_seed_ = 0;
  bool training_ = false;
};

}  // namespace duet::engine
