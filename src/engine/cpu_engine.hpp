#pragma once
// The fp32 CPU engine: the reference every faster engine is tested against.
// With LoRA the model's weights are a frozen base (no gradients, no moments)
// and an adapter is trained; the reference is the base with the adapter off.
#include <memory>
#include <optional>

#include "engine/engine.hpp"
#include "engine/sharded_adamw.hpp"
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
  double optimizer_step(double lr) override;
  ParameterSet<float>& master_weights() override { return trained(); }
  AdamW& optimizer() override;
  void state_changed() override {}  // the host copy is the state
  // The fp32 weights are both master and working copy here, so ZeRO-1 saves
  // the moments' memory, ZeRO-2 the communication of an all-reduce, and ZeRO-3
  // gathers the whole model before the step's first forward (no saving on
  // this engine; docs/distributed.md).
  void enable_data_parallel(dist::Communicator& comm, int zero_stage) override;
  ShardedAdamW* sharded_optimizer() override { return sharded_.get(); }
  void gather_weights() override;

  const LoraConfig* lora() const override { return lora_ ? &*lora_ : nullptr; }
  const ParameterSet<float>& base_weights() override { return params_; }
  void set_training(bool on) override { training_ = on; }

 private:
  ParameterSet<float>& trained() { return adapter_ ? *adapter_ : params_; }
  int64_t optimizer_steps() const { return sharded_ ? sharded_->steps() : optimizer_->steps(); }
  LoraPass<float> adapter_pass(const Batch& batch);

  Transformer<float> model_;
  ParameterSet<float> params_;  // the model, or the frozen base under an adapter
  std::optional<LoraConfig> lora_;
  std::unique_ptr<ParameterSet<float>> adapter_;
  ParameterSet<float> grads_;  // of the trained weights: the model's or the adapter's
  std::unique_ptr<ParameterSet<float>> reference_;
  bool reference_is_base_ = false;
  Workspace<float> workspace_;
  AdamWOptions adamw_options_;
  std::unique_ptr<AdamW> optimizer_;       // of the trained weights, one process
  std::unique_ptr<ShardedAdamW> sharded_;  // data parallel (replaces optimizer_)
  uint64_t lora_seed_ = 0;
  bool training_ = false;
};

}  // namespace duet::engine
