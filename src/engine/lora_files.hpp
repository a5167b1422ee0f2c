#pragma once
// PEFT's adapter folder, read and written as peft does: adapter_config.json
// (LoraConfig's fields) and adapter_model.safetensors (tensors named
// base_model.model.<module>.lora_A.weight / lora_B.weight, fp32 here).
// PeftModel.from_pretrained(base, DIR) loads what save_adapter writes, and
// duet loads what peft's save_pretrained writes (plain LoRA: no DoRA, biases,
// rank/alpha patterns or extra trained modules, which are refused by name).
#include <filesystem>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "engine/lora.hpp"
#include "engine/parameters.hpp"

namespace duet::engine {

inline constexpr const char* kAdapterConfigFile = "adapter_config.json";
inline constexpr const char* kAdapterWeightsFile = "adapter_model.safetensors";

nlohmann::json adapter_config_json(const LoraConfig& lora, const std::string& base_model);
LoraConfig lora_config_from_json(const nlohmann::json& j, const std::string& origin);

// The config of the adapter in `dir`; one-line errors naming the file.
LoraConfig read_adapter_config(const std::filesystem::path& dir);

// Fills `adapter` (laid out by layout_adapter for the same config) from
// dir/adapter_model.safetensors: every tensor present with its shape, none extra.
void load_adapter_weights(const std::filesystem::path& dir, ParameterSet<float>& adapter);

// Writes both files into `dir` (which must exist), each atomically.
void save_adapter(const std::filesystem::path& dir, const LoraConfig& lora, const ParameterSet<float>& adapter,
                  const std::string& base_model);

}  // namespace duet::engine
