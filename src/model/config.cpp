#include "model/config.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

#include "util/error.hpp"
#include "util/json_integer.hpp"
#include "util/read_file.hpp"

namespace duet::model {

namespace {

using nlohmann::json;

constexpr std::string_view kSupported = "LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM";

// Typed access to config.json fields; absent and null read as "not given".
class Fields {
 public:
  Fields(const json& object, std::string_view source, std::string prefix = "")
      : j_(object), source_(source), prefix_(std::move(prefix)) {}

  const json* get(const char* key) const {
    const auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  bool has(const char* key) const { return get(key) != nullptr; }

  std::optional<int64_t> optional_int(const char* key) const {
    const json* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (const auto i = json_integer(*v)) return *i;  // whole floats too: some tools write 8192.0
    bad(key, *v, "an integer");
  }
  int64_t required_int(const char* key) const {
    const auto v = optional_int(key);
    if (!v) missing(key);
    return *v;
  }
  std::optional<double> optional_number(const char* key) const {
    const json* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number()) bad(key, *v, "a number");
    return v->get<double>();
  }
  double required_number(const char* key) const {
    const auto v = optional_number(key);
    if (!v) missing(key);
    return *v;
  }
  bool boolean(const char* key, bool fallback) const {
    const json* v = get(key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) bad(key, *v, "true or false");
    return v->get<bool>();
  }
  std::optional<std::string> optional_string(const char* key) const {
    const json* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) bad(key, *v, "a string");
    return v->get<std::string>();
  }

  [[noreturn]] void bad(const char* key, const json& v, const char* expected) const {
    fail("{}: '{}{}' must be {} (got {}); fix config.json", source_, prefix_, key, expected,
         v.dump());
  }
  [[noreturn]] void missing(const char* key) const {
    fail("{}: required field '{}{}' is missing; fix config.json", source_, prefix_, key);
  }

 private:
  const json& j_;
  std::string_view source_;
  std::string prefix_;
};

Architecture parse_architecture(const Fields& f, std::string_view source) {
  const json* list = f.get("architectures");
  const auto model_type = f.optional_string("model_type");
  std::optional<Architecture> arch;
  if (list != nullptr) {
    if (!list->is_array() || list->size() != 1 || !(*list)[0].is_string())
      fail("{}: 'architectures' must list exactly one class name (got {}); supported: {}", source,
           list->dump(), kSupported);
    const auto name = (*list)[0].get<std::string>();
    for (auto a : {Architecture::Llama, Architecture::Qwen2, Architecture::Mistral})
      if (architecture_class(a) == name) arch = a;
    if (!arch)
      fail("{}: architecture '{}' is not supported; supported: {}", source, name, kSupported);
    if (model_type && *model_type != architecture_model_type(*arch))
      fail("{}: model_type '{}' does not match architecture '{}' (expected model_type '{}'); fix "
           "config.json",
           source, *model_type, name, architecture_model_type(*arch));
    return *arch;
  }
  if (!model_type)
    fail("{}: neither 'architectures' nor 'model_type' is given; supported: {}", source, kSupported);
  for (auto a : {Architecture::Llama, Architecture::Qwen2, Architecture::Mistral})
    if (architecture_model_type(a) == *model_type) return a;
  fail("{}: model_type '{}' is not supported; supported: llama, qwen2, mistral ({})", source,
       *model_type, kSupported);
}

// rope_scaling (transformers 4) or rope_parameters (transformers 5, which also
// carries rope_theta). transformers 5 prefers rope_scaling when both are given.
void parse_rope(const Fields& f, std::string_view source, ModelConfig& c) {
  const json* scaling = f.get("rope_scaling");
  const json* params = f.get("rope_parameters");
  const json* rope = scaling != nullptr ? scaling : params;
  const char* key = scaling != nullptr ? "rope_scaling" : "rope_parameters";
  c.rope_theta = f.optional_number("rope_theta").value_or(10000.0);
  if (f.optional_number("partial_rotary_factor").value_or(1.0) != 1.0)
    fail("{}: 'partial_rotary_factor' other than 1 is not supported by Llama-family models; fix "
         "config.json",
         source);
  if (rope == nullptr) return;
  if (!rope->is_object()) fail("{}: '{}' must be an object or null (got {})", source, key, rope->dump());
  const Fields r(*rope, source, std::string(key) + ".");
  if (const auto theta = r.optional_number("rope_theta")) c.rope_theta = *theta;
  if (r.optional_number("partial_rotary_factor").value_or(1.0) != 1.0)
    fail("{}: '{}.partial_rotary_factor' other than 1 is not supported; fix config.json", source, key);
  auto type = r.optional_string("rope_type");
  if (!type) type = r.optional_string("type");
  if (!type) {
    if (rope == params) return;  // transformers 5 defaults rope_type to "default"
    fail("{}: 'rope_scaling' has no 'rope_type' (or 'type'); set it to \"llama3\" or \"linear\", or "
         "set rope_scaling to null",
         source);
  }
  auto& s = c.rope_scaling;
  if (*type == "default") {
    s = RopeScaling{};
  } else if (*type == "linear") {
    s.type = RopeType::Linear;
    s.factor = r.required_number("factor");
  } else if (*type == "llama3") {
    s.type = RopeType::Llama3;
    s.factor = r.required_number("factor");
    s.low_freq_factor = r.required_number("low_freq_factor");
    s.high_freq_factor = r.required_number("high_freq_factor");
    s.original_max_position_embeddings = r.required_int("original_max_position_embeddings");
  } else {
    fail("{}: RoPE scaling type '{}' is not supported; supported: llama3, linear (or none)", source,
         *type);
  }
}

void parse_token_ids(const Fields& f, std::string_view source, ModelConfig& c) {
  c.bos_token_id = f.optional_int("bos_token_id");
  const auto pad = f.optional_int("pad_token_id");
  if (pad && *pad >= 0) c.pad_token_id = pad;  // old Llama configs use -1 for "none"
  if (const json* eos = f.get("eos_token_id")) {
    if (eos->is_array()) {
      c.eos_is_list = true;
      for (const auto& id : *eos) {
        if (!id.is_number_integer())
          fail("{}: 'eos_token_id' must be an integer or a list of integers (got {}); fix "
               "config.json",
               source, eos->dump());
        c.eos_token_ids.push_back(id.get<int64_t>());
      }
    } else {
      c.eos_token_ids.push_back(f.required_int("eos_token_id"));
    }
  }
}

DType parse_dtype_field(const Fields& f, std::string_view source) {
  // transformers 5 writes "dtype", earlier versions "torch_dtype".
  auto name = f.optional_string("dtype");
  const char* key = "dtype";
  if (!name) {
    name = f.optional_string("torch_dtype");
    key = "torch_dtype";
  }
  if (!name) return DType::F32;
  if (*name == "bfloat16") return DType::BF16;
  if (*name == "float16") return DType::F16;
  if (*name == "float32") return DType::F32;
  fail("{}: '{}' is '{}'; supported: bfloat16, float16, float32", source, key, *name);
}

void check_positive(std::string_view source, const char* key, int64_t value) {
  if (value <= 0) fail("{}: '{}' must be positive (got {}); fix config.json", source, key, value);
}

void check_token(std::string_view source, const char* key, int64_t id, int64_t vocab) {
  if (id < 0 || id >= vocab)
    fail("{}: '{}' {} is outside the vocabulary [0, {}); fix config.json", source, key, id, vocab);
}

}  // namespace

std::string_view architecture_class(Architecture arch) {
  switch (arch) {
    case Architecture::Llama: return "LlamaForCausalLM";
    case Architecture::Qwen2: return "Qwen2ForCausalLM";
    case Architecture::Mistral: return "MistralForCausalLM";
  }
  return "";
}

std::string_view architecture_model_type(Architecture arch) {
  switch (arch) {
    case Architecture::Llama: return "llama";
    case Architecture::Qwen2: return "qwen2";
    case Architecture::Mistral: return "mistral";
  }
  return "";
}

ModelConfig parse_config(const json& j, std::string_view source) {
  if (!j.is_object()) fail("{}: not a JSON object; expected a Hugging Face config.json", source);
  const Fields f(j, source);
  ModelConfig c;
  c.architecture = parse_architecture(f, source);
  c.vocab_size = f.required_int("vocab_size");
  c.hidden_size = f.required_int("hidden_size");
  c.intermediate_size = f.required_int("intermediate_size");
  c.num_hidden_layers = f.required_int("num_hidden_layers");
  c.num_attention_heads = f.required_int("num_attention_heads");
  check_positive(source, "hidden_size", c.hidden_size);
  check_positive(source, "num_attention_heads", c.num_attention_heads);
  c.num_key_value_heads = f.optional_int("num_key_value_heads").value_or(c.num_attention_heads);
  if (const auto head_dim = f.optional_int("head_dim")) {
    c.head_dim = *head_dim;
  } else {
    if (c.hidden_size % c.num_attention_heads != 0)
      fail("{}: 'hidden_size' {} is not a multiple of 'num_attention_heads' {} and no 'head_dim' is "
           "given; fix config.json",
           source, c.hidden_size, c.num_attention_heads);
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  c.rms_norm_eps = f.optional_number("rms_norm_eps").value_or(1e-6);
  c.max_position_embeddings = f.required_int("max_position_embeddings");
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
  parse_rope(f, source, c);

  const auto act = f.optional_string("hidden_act").value_or("silu");
  if (act != "silu")
    fail("{}: 'hidden_act' is '{}'; Llama-family models use \"silu\", the only one supported", source,
         act);
  c.dtype = parse_dtype_field(f, source);

  switch (c.architecture) {
    case Architecture::Llama:
      c.attention_bias = f.boolean("attention_bias", false);
      if (f.boolean("mlp_bias", false))
        fail("{}: 'mlp_bias' true is not supported (no Llama checkpoint uses MLP biases); fix "
             "config.json",
             source);
      break;
    case Architecture::Qwen2:
      // Qwen2 always has q/k/v biases and no o bias; attention_bias is not read.
      c.sliding_window = f.optional_int("sliding_window");
      if (f.boolean("use_sliding_window", false))
        fail("{}: Qwen2 sliding-window attention ('use_sliding_window': true) is not supported; "
             "set it to false (as every released Qwen2 model does)",
             source);
      break;
    case Architecture::Mistral:
      c.sliding_window = f.optional_int("sliding_window");
      break;
  }
  parse_token_ids(f, source, c);
  validate_config(c, source);
  return c;
}

void validate_config(const ModelConfig& c, std::string_view source) {
  check_positive(source, "vocab_size", c.vocab_size);
  check_positive(source, "hidden_size", c.hidden_size);
  check_positive(source, "intermediate_size", c.intermediate_size);
  check_positive(source, "num_hidden_layers", c.num_hidden_layers);
  check_positive(source, "num_attention_heads", c.num_attention_heads);
  check_positive(source, "num_key_value_heads", c.num_key_value_heads);
  check_positive(source, "head_dim", c.head_dim);
  check_positive(source, "max_position_embeddings", c.max_position_embeddings);
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    fail("{}: 'num_attention_heads' {} is not a multiple of 'num_key_value_heads' {}; fix "
         "config.json",
         source, c.num_attention_heads, c.num_key_value_heads);
  if (c.head_dim % 2 != 0)
    fail("{}: 'head_dim' {} is odd; rotary embeddings need an even head size", source, c.head_dim);
  if (!(c.rms_norm_eps > 0) || !std::isfinite(c.rms_norm_eps))
    fail("{}: 'rms_norm_eps' must be positive and finite (got {})", source, c.rms_norm_eps);
  if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta))
    fail("{}: 'rope_theta' must be positive and finite (got {})", source, c.rope_theta);
  const auto& s = c.rope_scaling;
  if (s.type != RopeType::Default && (!(s.factor > 0) || !std::isfinite(s.factor)))
    fail("{}: RoPE scaling 'factor' must be positive and finite (got {})", source, s.factor);
  if (s.type == RopeType::Llama3) {
    if (!(s.low_freq_factor > 0) || !(s.high_freq_factor > s.low_freq_factor) ||
        !std::isfinite(s.high_freq_factor))
      fail("{}: llama3 RoPE scaling needs 0 < low_freq_factor < high_freq_factor (got {} and {})",
           source, s.low_freq_factor, s.high_freq_factor);
    check_positive(source, "original_max_position_embeddings", s.original_max_position_embeddings);
  }
  if (c.sliding_window) check_positive(source, "sliding_window", *c.sliding_window);
  if (c.bos_token_id) check_token(source, "bos_token_id", *c.bos_token_id, c.vocab_size);
  if (c.pad_token_id) check_token(source, "pad_token_id", *c.pad_token_id, c.vocab_size);
  for (int64_t id : c.eos_token_ids) check_token(source, "eos_token_id", id, c.vocab_size);
}

void require_model_folder(const std::filesystem::path& folder, std::string_view flag) {
  std::error_code ec;
  if (std::filesystem::is_directory(folder, ec)) return;
  if (std::filesystem::exists(folder, ec))
    fail("{} {}: is a file, not a folder; pass the model folder that holds config.json and the *.safetensors files",
         flag, folder.string());
  fail("{} {}: no such folder; pass a model folder that holds config.json and the *.safetensors files", flag,
       folder.string());
}

ModelConfig load_config(const std::filesystem::path& path) {
  const auto file = std::filesystem::is_directory(path) ? path / "config.json" : path;
  const auto text = read_file(file);
  if (!text)
    fail("{}: cannot open the model config; check that the file exists and is readable",
         file.string());
  json j;
  try {
    j = json::parse(*text);
  } catch (const json::exception& e) {
    fail("{}: not valid JSON ({}); fix config.json", file.string(), e.what());
  }
  return parse_config(j, file.string());
}

}  // namespace duet::model
