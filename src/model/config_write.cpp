// to_json / save_config: see config.hpp.
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "model/config.hpp"
#include "util/error.hpp"

namespace duet::model {

namespace {

using nlohmann::json;

json rope_scaling_json(const RopeScaling& s) {
  switch (s.type) {
    case RopeType::Default: return nullptr;
    case RopeType::Linear: return {{"rope_type", "linear"}, {"factor", s.factor}};
    case RopeType::Llama3:
      return {{"rope_type", "llama3"},
              {"factor", s.factor},
              {"low_freq_factor", s.low_freq_factor},
              {"high_freq_factor", s.high_freq_factor},
              {"original_max_position_embeddings", s.original_max_position_embeddings}};
  }
  return nullptr;
}

json optional_id(const std::optional<int64_t>& id) { return id ? json(*id) : json(nullptr); }

// Absent fields are left out rather than written as null: transformers then
// applies its own defaults (e.g. Llama's bos 1 / eos 2), as for the original file.
void put_id(json& j, const char* key, const std::optional<int64_t>& id) {
  if (id) j[key] = *id;
}

}  // namespace

json to_json(const ModelConfig& c) {
  // The legacy rope_theta + rope_scaling pair is read by transformers 4 and 5 alike.
  json j = {
      {"architectures", json::array({std::string(architecture_class(c.architecture))})},
      {"model_type", std::string(architecture_model_type(c.architecture))},
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_hidden_layers},
      {"num_attention_heads", c.num_attention_heads},
      {"num_key_value_heads", c.num_key_value_heads},
      {"hidden_act", "silu"},
      {"max_position_embeddings", c.max_position_embeddings},
      {"rms_norm_eps", c.rms_norm_eps},
      {"rope_theta", c.rope_theta},
      {"rope_scaling", rope_scaling_json(c.rope_scaling)},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"attention_dropout", 0.0},
      {"initializer_range", 0.02},
      {"use_cache", true},
      {"dtype", c.dtype == DType::BF16 ? "bfloat16" : c.dtype == DType::F16 ? "float16" : "float32"},
  };
  // head_dim only where it is not the derived hidden_size / num_attention_heads.
  if (c.hidden_size % c.num_attention_heads != 0 || c.head_dim != c.hidden_size / c.num_attention_heads)
    j["head_dim"] = c.head_dim;
  put_id(j, "bos_token_id", c.bos_token_id);
  put_id(j, "pad_token_id", c.pad_token_id);
  if (c.eos_is_list || c.eos_token_ids.size() > 1)
    j["eos_token_id"] = c.eos_token_ids;
  else if (!c.eos_token_ids.empty())
    j["eos_token_id"] = c.eos_token_ids[0];
  switch (c.architecture) {
    case Architecture::Llama:
      j["attention_bias"] = c.attention_bias;
      j["mlp_bias"] = false;
      break;
    case Architecture::Qwen2:
      j["use_sliding_window"] = false;
      j["sliding_window"] = optional_id(c.sliding_window);
      j["max_window_layers"] = c.num_hidden_layers;
      break;
    case Architecture::Mistral:
      j["sliding_window"] = optional_id(c.sliding_window);
      break;
  }
  return j;
}

void save_config(const ModelConfig& config, const std::filesystem::path& path) {
  const auto temp = path.string() + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << to_json(config).dump(2) << '\n';
    out.close();
    if (!out) {
      std::remove(temp.c_str());
      fail("{}: cannot write the model config; check that the folder exists and is writable",
           path.string());
    }
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::remove(temp.c_str());
    fail("{}: cannot move the config into place ({})", path.string(), ec.message());
  }
}

}  // namespace duet::model
