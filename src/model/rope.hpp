#pragma once
// RoPE inverse frequencies, computed exactly as transformers computes its
// `inv_freq` buffer (modeling_rope_utils: default, linear and llama3 types):
// the same fp32 operations in the same order, so the rotation angles the model
// sees match the reference implementation's.
#include <vector>

#include "model/config.hpp"

namespace duet::model {

// head_dim / 2 values; pair i of each head rotates by position * result[i].
std::vector<float> rope_inverse_frequencies(const ModelConfig& config);

}  // namespace duet::model
