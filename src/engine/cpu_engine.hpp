#pragma once
// The fp32 CPU engine: the reference every faster engine is tested against.
#include <memory>

#include "engine/engine.hpp"
#include "engine/transformer.hpp"

namespace duet::engine {

class CpuEngine final : public Engine {
 public:
  explicit CpuEngine(const EngineOptions& options);

  const model::ModelConfig& config() const override { return model_.config(); }
  bool has_reference() const override { return reference_ != nullptr; }
  std::vector<ResponseLogp> score_policy(const Batch& batch) override;
  std::vector<ResponseLogp> score_reference(const Batch& batch) override;
  void zero_grad() override { grads_.fill(0.0f); }
  void backprop(const Batch& batch, std::span<const double> d_response) override;
  const ParameterSet<float>& gradients() override { return grads_; }
  double optimizer_step(double lr) override { return optimizer_.step(params_, grads_, lr); }
  ParameterSet<float>& master_weights() override { return params_; }
  AdamW& optimizer() override { return optimizer_; }
  void state_changed() override {}  // the host copy is the state

 private:
  Transformer<float> model_;
  ParameterSet<float> params_, grads_;
  std::unique_ptr<ParameterSet<float>> reference_;
  Workspace<float> workspace_;
  AdamW optimizer_;
};

}  // namespace duet::engine
