#include "model/presets.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "util/error.hpp"

namespace duet::model {

namespace {

struct Preset {
  const char* name;
  const char* config_json;  // as the model's config.json (the fields duet reads)
};

// Values from the published config.json files of each model.
constexpr Preset kPresets[] = {
    {"llama-3.2-1b", R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256,
      "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
      "num_key_value_heads": 8, "head_dim": 64, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
      "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                       "original_max_position_embeddings": 8192},
      "max_position_embeddings": 131072, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
      "bos_token_id": 128000, "eos_token_id": 128001})"},
    {"llama-3.2-3b", R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256,
      "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 28, "num_attention_heads": 24,
      "num_key_value_heads": 8, "head_dim": 128, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
      "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                       "original_max_position_embeddings": 8192},
      "max_position_embeddings": 131072, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
      "bos_token_id": 128000, "eos_token_id": 128001})"},
    {"llama-3.1-8b", R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256,
      "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
      "num_key_value_heads": 8, "head_dim": 128, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
      "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                       "original_max_position_embeddings": 8192},
      "max_position_embeddings": 131072, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
      "bos_token_id": 128000, "eos_token_id": 128001})"},
    {"qwen2.5-7b", R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 152064,
      "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
      "num_key_value_heads": 4, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "max_position_embeddings": 131072,
      "use_sliding_window": false, "sliding_window": 131072, "tie_word_embeddings": false,
      "torch_dtype": "bfloat16", "bos_token_id": 151643, "eos_token_id": 151643})"},
    {"mistral-7b", R"({"architectures": ["MistralForCausalLM"], "model_type": "mistral", "vocab_size": 32000,
      "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
      "num_key_value_heads": 8, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "sliding_window": 4096,
      "max_position_embeddings": 32768, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
      "bos_token_id": 1, "eos_token_id": 2})"},
};

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& p : kPresets) names.emplace_back(p.name);
  return names;
}

ModelConfig preset_config(std::string_view name) {
  for (const auto& p : kPresets)
    if (name == p.name) return parse_config(nlohmann::json::parse(p.config_json), fmt::format("preset {}", p.name));
  fail("unknown architecture '{}': known presets are {}", name, fmt::join(preset_names(), ", "));
}

}  // namespace duet::model
