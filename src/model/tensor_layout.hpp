#pragma once
// The tensors a config needs, named and shaped as transformers saves them
// (Linear weights are [out_features, in_features]).
#include <string>
#include <vector>

#include "model/config.hpp"
#include "model/safetensors.hpp"

namespace duet::model {

struct ExpectedTensor {
  std::string name;
  Shape shape;
  bool operator==(const ExpectedTensor&) const = default;
};

// In model order: embeddings, then per layer input_layernorm, q/k/v/o (with
// their biases where the config has them), post_attention_layernorm,
// gate/up/down, then model.norm and lm_head (absent when embeddings are tied).
std::vector<ExpectedTensor> expected_tensors(const ModelConfig& config);

// Tensors some checkpoints carry that the model does not use and that are safe
// to ignore: old rotary inv_freq buffers, and lm_head when it is tied to the
// embeddings.
bool is_ignorable_tensor(const ModelConfig& config, const std::string& name);

}  // namespace duet::model
