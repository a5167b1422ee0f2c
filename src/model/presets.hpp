#pragma once
// Published architectures by name (their config.json values), for benchmarks
// and `duet init --preset`: random weights of a real model's shape, no download.
#include <string>
#include <string_view>
#include <vector>

#include "model/config.hpp"

namespace duet::model {

// llama-3.2-1b, llama-3.2-3b, llama-3.1-8b, qwen2.5-7b, mistral-7b; duet::fail
// naming the known ones otherwise.
ModelConfig preset_config(std::string_view name);
std::vector<std::string> preset_names();

}  // namespace duet::model
