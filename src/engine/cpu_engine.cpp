#include "engine/cpu_engine.hpp"

#include "engine/lora_files.hpp"
#include "util/error.hpp"

namespace duet::engine {

namespace {

model::ModelConfig engine_config(const EngineOptions& o) {
  return o.random_model ? *o.random_model : model::load_config(o.model);
}

// What is trained: every weight of the model, or only the adapter's.
std::vector<TensorSlot> trained_slots(const model::ModelConfig& config, const EngineOptions& o) {
  return o.lora ? layout_adapter(config, *o.lora) : layout_parameters(config);
}

}  // namespace

CpuEngine::CpuEngine(const EngineOptions& o)
    : model_(engine_config(o)),
      params_(model_.config()),
      lora_(o.lora),
      grads_(trained_slots(model_.config(), o)),
      adamw_options_(o.adamw),
      optimizer_(std::make_unique<AdamW>(trained_slots(model_.config(), o), o.adamw)),
      lora_seed_(o.lora_seed) {
  if (o.random_model) {
    init_random(params_, o.random_seed, o.random_std);
  } else {
    load_weights(params_, o.model);
  }
  if (lora_) {
    lora_->validate();
    if (!o.reference.empty() || o.reference_is_start)
      fail("internal: with LoRA the reference is the base model (reference_is_base), not a second copy");
    adapter_ = std::make_unique<ParameterSet<float>>(layout_adapter(model_.config(), *lora_));
    if (o.adapter.empty()) {
      init_adapter(*adapter_, o.lora_seed);
    } else {
      load_adapter_weights(o.adapter, *adapter_);
    }
    reference_is_base_ = o.reference_is_base;
    return;
  }
  if (o.reference_is_base || !o.adapter.empty()) fail("internal: adapter options without a LoRA config");
  if (o.reference_is_start) {
    reference_ = std::make_unique<ParameterSet<float>>(params_);
  } else if (!o.reference.empty()) {
    reference_ = std::make_unique<ParameterSet<float>>(model_.config());
    load_weights(*reference_, o.reference);
  }
}

LoraPass<float> CpuEngine::adapter_pass(const Batch& batch) {
  LoraPass<float> pass;
  pass.config = &*lora_;
  pass.weights = adapter_.get();
  pass.grads = &grads_;
  pass.training = training_;
  // Dropout masks differ per step and batch; the same (step, batch) gives the same mask.
  if (training_ && lora_->dropout > 0) pass.dropout_key = lora_dropout_key(lora_seed_, optimizer_steps(), batch);
  return pass;
}

std::vector<ResponseLogp> CpuEngine::score_policy(const Batch& batch) {
  gather_weights();  // ZeRO-3: just before the weights are used
  if (!adapter_) return score(model_, params_, batch, workspace_);
  const LoraPass<float> pass = adapter_pass(batch);
  const std::span<const float> logp = model_.forward(batch, params_, workspace_, &pass);
  return sum_responses<float>(batch, logp, std::span<const float>(workspace_.target_logit_sum.data(), logp.size()));
}

std::vector<ResponseLogp> CpuEngine::score_reference(const Batch& batch) {
  if (reference_is_base_) return score(model_, params_, batch, workspace_);  // the adapter off
  if (!reference_) fail("internal: this engine was built without a reference model");
  return score(model_, *reference_, batch, workspace_);
}

void CpuEngine::backprop(const Batch& batch, std::span<const double> d_response) {
  gather_weights();
  if (!adapter_) return engine::backprop(model_, params_, batch, d_response, workspace_, grads_);
  const LoraPass<float> pass = adapter_pass(batch);
  model_.backward(batch, params_, spread_response_gradients<float>(batch, d_response), workspace_, pass);
}

double CpuEngine::optimizer_step(double lr) {
  if (sharded_) return sharded_->step(trained().values(), grads_.values(), lr);
  return optimizer_->step(trained(), grads_, lr);
}

AdamW& CpuEngine::optimizer() {
  if (!optimizer_) fail("internal: a data-parallel engine's optimizer state is in sharded_optimizer()");
  return *optimizer_;
}

void CpuEngine::enable_data_parallel(dist::Communicator& comm, int zero_stage) {
  sharded_ = std::make_unique<ShardedAdamW>(comm, zero_stage, trained().slots(), adamw_options_);
  optimizer_.reset();  // its full-size moments are what sharding saves
}

void CpuEngine::gather_weights() {
  if (sharded_) sharded_->gather_weights(trained().values());
}

}  // namespace duet::engine
