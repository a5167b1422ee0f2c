#include "engine/cpu_engine.hpp"

#include "util/error.hpp"

namespace duet::engine {

CpuEngine::CpuEngine(const EngineOptions& o)
    : model_(o.random_model ? *o.random_model : model::load_config(o.model)),
      params_(model_.config()),
      grads_(model_.config()),
      adamw_options_(o.adamw),
      optimizer_(std::make_unique<AdamW>(model_.config(), o.adamw)) {
  if (o.random_model) {
    init_random(params_, o.random_seed, o.random_std);
  } else {
    load_weights(params_, o.model);
  }
  if (o.reference_is_start) {
    reference_ = std::make_unique<ParameterSet<float>>(params_);
  } else if (!o.reference.empty()) {
    reference_ = std::make_unique<ParameterSet<float>>(model_.config());
    load_weights(*reference_, o.reference);
  }
}

std::vector<ResponseLogp> CpuEngine::score_policy(const Batch& batch) {
  gather_weights();  // ZeRO-3: just before the weights are used
  return score(model_, params_, batch, workspace_);
}

std::vector<ResponseLogp> CpuEngine::score_reference(const Batch& batch) {
  if (!reference_) fail("internal: this engine was built without a reference model");
  return score(model_, *reference_, batch, workspace_);
}

void CpuEngine::backprop(const Batch& batch, std::span<const double> d_response) {
  gather_weights();
  engine::backprop(model_, params_, batch, d_response, workspace_, grads_);
}

double CpuEngine::optimizer_step(double lr) {
  if (sharded_) return sharded_->step(params_.values(), grads_.values(), lr);
  return optimizer_->step(params_, grads_, lr);
}

AdamW& CpuEngine::optimizer() {
  if (!optimizer_) fail("internal: a data-parallel engine's optimizer state is in sharded_optimizer()");
  return *optimizer_;
}

void CpuEngine::enable_data_parallel(dist::Communicator& comm, int zero_stage) {
  sharded_ = std::make_unique<ShardedAdamW>(comm, zero_stage, params_.slots(), adamw_options_);
  optimizer_.reset();  // its full-size moments are what sharding saves
}

void CpuEngine::gather_weights() {
  if (sharded_) sharded_->gather_weights(params_.values());
}

}  // namespace duet::engine
