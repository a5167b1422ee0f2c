#include "engine/lora_files.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/safetensors.hpp"
#include "util/error.hpp"
#include "util/json_integer.hpp"

namespace duet::engine {

namespace fs = std::filesystem;
using nlohmann::json;

json adapter_config_json(const LoraConfig& lora, const std::string& base_model) {
  // lora_alpha is an int in PEFT's LoraConfig: write a whole number as one.
  const json alpha = lora.alpha == static_cast<double>(static_cast<int64_t>(lora.alpha))
                         ? json(static_cast<int64_t>(lora.alpha))
                         : json(lora.alpha);
  return {{"alpha_pattern", json::object()},
          {"auto_mapping", nullptr},
          {"base_model_name_or_path", base_model},
          {"bias", "none"},
          {"fan_in_fan_out", false},
          {"inference_mode", true},
          {"init_lora_weights", true},
          {"layers_pattern", nullptr},
          {"layers_to_transform", nullptr},
          {"lora_alpha", alpha},
          {"lora_dropout", lora.dropout},
          {"modules_to_save", nullptr},
          {"peft_type", "LORA"},
          {"r", lora.r},
          {"rank_pattern", json::object()},
          {"revision", nullptr},
          {"target_modules", lora.target_modules},
          {"task_type", "CAUSAL_LM"},
          {"use_dora", false},
          {"use_rslora", lora.use_rslora}};
}

namespace {

// A field that must keep PEFT's default for plain LoRA, else one line saying which.
void require_default(const json& j, const char* key, const json& plain, const std::string& origin) {
  if (!j.contains(key) || j[key].is_null() || j[key] == plain) return;
  if ((plain.is_object() || plain.is_null()) && (j[key].is_object() || j[key].is_array()) && j[key].empty()) return;
  fail("{}: {} = {} is not supported: duet trains plain LoRA adapters ({} {})", origin, key, j[key].dump(), key,
       plain.is_null() ? "null" : plain.dump());
}

// PEFT matches a target_modules entry against a module's path as the path
// itself or a suffix after a dot, and writes full paths when it resolves
// "all-linear" on a small model (under 20 of them it keeps them unoptimised):
// "model.layers.0.mlp.up_proj". The module type an entry names and the layer
// it is limited to (-1: every layer); an entry that is no suffix of a
// Llama-family block's path comes back as it is, for parse_target_modules to name.
std::pair<std::string, int64_t> peft_target(const std::string& entry) {
  for (const char* m : kLoraModules) {
    const std::string type = m;
    // "mlp.up_proj": the module's path in a block, below "model.layers.<L>."
    const std::string parent = lora_module_path(0, type).substr(std::string_view("model.layers.0.").size());
    if (entry == type || entry == parent) return {type, -1};
    const std::string tail = "." + parent;
    if (entry.size() <= tail.size() || !entry.ends_with(tail)) continue;
    std::string layer = entry.substr(0, entry.size() - tail.size());  // "[[model.]layers.]<L>"
    for (const char* prefix : {"model.layers.", "layers."})
      if (layer.starts_with(prefix)) {
        layer.erase(0, std::string(prefix).size());
        break;
      }
    if (!layer.empty() && layer.size() < 10 && layer.find_first_not_of("0123456789") == std::string::npos)
      return {type, std::stoll(layer)};
  }
  return {entry, -1};
}

}  // namespace

LoraConfig lora_config_from_json(const json& j, const std::string& origin) {
  if (!j.is_object()) fail("{}: expected a JSON object", origin);
  // Compared as JSON: j.value(.., std::string()) threw json::type_error for a peft_type of another type
  // (false), an escaped exception instead of this line (found by fuzzing).
  if (!j.contains("peft_type") || j["peft_type"] != "LORA")
    fail("{}: peft_type is {}, not \"LORA\": only LoRA adapters are supported", origin,
         j.contains("peft_type") ? j["peft_type"].dump() : "missing");
  if (j.contains("task_type") && !j["task_type"].is_null() && j["task_type"] != "CAUSAL_LM")
    fail("{}: task_type {} is not CAUSAL_LM", origin, j["task_type"].dump());
  require_default(j, "use_dora", false, origin);
  require_default(j, "bias", "none", origin);
  require_default(j, "fan_in_fan_out", false, origin);
  require_default(j, "modules_to_save", nullptr, origin);
  require_default(j, "layers_to_transform", nullptr, origin);
  require_default(j, "rank_pattern", json::object(), origin);
  require_default(j, "alpha_pattern", json::object(), origin);
  require_default(j, "target_parameters", nullptr, origin);
  require_default(j, "lora_bias", false, origin);
  // Fields of peft's LoraConfig that change which layers are adapted or how: refused unless unset.
  for (const char* key : {"exclude_modules", "layer_replication", "trainable_token_indices", "alora_invocation_tokens",
                          "velora_config", "monteclora_config"})
    require_default(j, key, nullptr, origin);
  require_default(j, "use_qalora", false, origin);
  LoraConfig c;
  try {
    // An integer: a float beyond int64_t's range was cast (undefined behaviour).
    const auto r = json_integer(j.at("r"));
    if (!r) fail("{}: r = {} is not a rank (a positive integer)", origin, j["r"].dump());
    c.r = *r;
    c.alpha = j.at("lora_alpha").get<double>();
    c.dropout = j.value("lora_dropout", 0.0);
    c.use_rslora = j.value("use_rslora", false);
    const json& t = j.at("target_modules");
    std::vector<std::string> names;
    if (t.is_string()) {
      if (t != "all-linear")
        fail("{}: target_modules {} is a regular expression; duet reads a list of module names or \"all-linear\"",
             origin, t.dump());
      names = {"all-linear"};
    } else {
      std::set<std::string> every_layer;
      for (const std::string& entry : t.get<std::vector<std::string>>()) {
        const auto [type, layer] = peft_target(entry);
        if (std::find(names.begin(), names.end(), type) == names.end()) names.push_back(type);
        if (layer < 0)
          every_layer.insert(type);
        else
          c.named_layers[type].insert(layer);
      }
      for (const std::string& type : every_layer) c.named_layers.erase(type);
    }
    c.target_modules = with_context(origin, [&] { return parse_target_modules(names); });
  } catch (const json::exception& e) {
    fail("{}: a field is missing or of the wrong type ({})", origin, e.what());
  }
  with_context(origin, [&] { c.validate(); });
  return c;
}

LoraConfig read_adapter_config(const fs::path& dir) {
  const fs::path file = dir / kAdapterConfigFile;
  std::ifstream in(file);
  if (!in) {
    if (!fs::is_directory(dir)) fail("{}: not a folder (a PEFT adapter folder holds {} and {})", dir.string(),
                                     kAdapterConfigFile, kAdapterWeightsFile);
    fail("{}: no {} here: not a PEFT adapter folder", dir.string(), kAdapterConfigFile);
  }
  const json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) fail("{}: not valid JSON", file.string());
  return lora_config_from_json(j, file.string());
}

void load_adapter_weights(const fs::path& dir, ParameterSet<float>& adapter) {
  const fs::path file = dir / kAdapterWeightsFile;
  if (!fs::exists(file)) {
    if (fs::exists(dir / "adapter_model.bin"))
      fail("{}: only adapter_model.bin here; duet reads {} (save the adapter with peft's safe_serialization=True)",
           dir.string(), kAdapterWeightsFile);
    fail("{}: no {} here", dir.string(), kAdapterWeightsFile);
  }
  const model::SafetensorsFile weights(file);
  std::set<std::string> expected;
  for (const TensorSlot& s : adapter.slots()) {
    expected.insert(s.name);
    const model::TensorInfo* info = weights.find(s.name);
    if (!info)
      fail("{}: lacks tensor '{}' (adapter_config.json's r and target_modules ask for it; duet adapts a module type "
           "in every layer or in none)",
           file.string(), s.name);
    if (info->shape != s.shape)
      fail("{}: tensor '{}' has shape {}, expected {} (from r and the base model's config)", file.string(), s.name,
           model::format_shape(info->shape), model::format_shape(s.shape));
    weights.load_f32(*info, std::span<float>(adapter.values().data() + s.offset, s.numel));
  }
  for (const auto& t : weights.tensors())
    if (!expected.contains(t.name))
      fail("{}: tensor '{}' is not part of a plain LoRA adapter of this model (duet trains only lora_A and lora_B of "
           "the target modules)", file.string(), t.name);
}

void save_adapter(const fs::path& dir, const LoraConfig& lora, const ParameterSet<float>& adapter,
                  const std::string& base_model) {
  std::vector<model::TensorData> tensors;
  for (const TensorSlot& s : adapter.slots())
    tensors.push_back({s.name, s.shape, std::span<const float>(adapter.values().data() + s.offset, s.numel)});
  model::write_safetensors(dir / kAdapterWeightsFile, tensors, model::DType::F32);
  const fs::path file = dir / kAdapterConfigFile, tmp = dir / (std::string(kAdapterConfigFile) + ".tmp");
  {
    std::ofstream out(tmp);
    out << adapter_config_json(lora, base_model).dump(2) << "\n";
    out.close();
    if (!out) fail("{}: cannot write; check free disk space", tmp.string());
  }
  fs::rename(tmp, file);
}

}  // namespace duet::engine
