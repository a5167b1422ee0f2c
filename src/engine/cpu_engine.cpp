#include "engine/cpu_engine.hpp"

#include "util/error.hpp"

namespace duet::engine {

CpuEngine::CpuEngine(const EngineOptions& o)
    : model_(o.random_model ? *o.random_model : model::load_config(o.model)),
      params_(model_.config()),
      grads_(model_.config()),
      optimizer_(model_.config(), o.adamw) {
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
  return score(model_, params_, batch, workspace_);
}

std::vector<ResponseLogp> CpuEngine::score_reference(const Batch& batch) {
  if (!reference_) fail("internal: this engine was built without a reference model");
  return score(model_, *reference_, batch, workspace_);
}

void CpuEngine::backprop(const Batch& batch, std::span<const double> d_response) {
  engine::backprop(model_, params_, batch, d_response, workspace_, grads_);
}

}  // namespace duet::engine
