#pragma once
// The model hyper-parameters duet reads from a Hugging Face config.json, for
// the three supported decoder families (Llama 2/3, Qwen2, Mistral). Anything
// the math depends on is either supported exactly or rejected with an error.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "model/dtype.hpp"

namespace duet::model {

enum class Architecture { Llama, Qwen2, Mistral };

// "LlamaForCausalLM" and "llama" for Architecture::Llama, etc.
std::string_view architecture_class(Architecture arch);
std::string_view architecture_model_type(Architecture arch);

enum class RopeType { Default, Linear, Llama3 };

struct RopeScaling {
  RopeType type = RopeType::Default;  // Default: no scaling
  double factor = 1.0;                // Linear, Llama3
  double low_freq_factor = 0.0;       // Llama3 only
  double high_freq_factor = 0.0;
  int64_t original_max_position_embeddings = 0;
  bool operator==(const RopeScaling&) const = default;
};

struct ModelConfig {
  Architecture architecture = Architecture::Llama;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // defaults to num_attention_heads
  int64_t head_dim = 0;             // defaults to hidden_size / num_attention_heads
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  int64_t max_position_embeddings = 0;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // Llama: biases on q, k, v and o (Qwen2 ignores it)
  // As written in config.json; only Mistral uses it by itself, Qwen2 only
  // with use_sliding_window (which duet does not support).
  std::optional<int64_t> sliding_window;
  DType dtype = DType::F32;  // torch_dtype / dtype; F32 when absent
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;
  bool eos_is_list = false;  // written back as a list even with one id
  std::optional<int64_t> pad_token_id;

  bool has_qkv_bias() const { return architecture == Architecture::Qwen2 || attention_bias; }
  bool has_o_bias() const { return architecture == Architecture::Llama && attention_bias; }
  // The attention window transformers applies: a query at position i sees keys
  // at positions > i - window. nullopt = full causal attention.
  std::optional<int64_t> attention_window() const {
    return architecture == Architecture::Mistral ? sliding_window : std::nullopt;
  }
  int64_t q_size() const { return num_attention_heads * head_dim; }
  int64_t kv_size() const { return num_key_value_heads * head_dim; }

  bool operator==(const ModelConfig&) const = default;
};

// Parses a config.json object; `source` (the file name) prefixes every error.
ModelConfig parse_config(const nlohmann::json& json, std::string_view source);
// Reads and parses a config.json file (or the config.json inside a folder).
ModelConfig load_config(const std::filesystem::path& path);
// duet::fail unless `folder` is a directory (a model folder: config.json,
// *.safetensors, usually tokenizer.json), naming `flag` and what to pass.
void require_model_folder(const std::filesystem::path& folder, std::string_view flag);

// Checks sizes and their consistency; parse_config already calls it.
void validate_config(const ModelConfig& config, std::string_view source);

// A config.json object that transformers loads back to the same model.
nlohmann::json to_json(const ModelConfig& config);
// Writes to_json(config) to `path`, indented like save_pretrained.
void save_config(const ModelConfig& config, const std::filesystem::path& path);

}  // namespace duet::model
