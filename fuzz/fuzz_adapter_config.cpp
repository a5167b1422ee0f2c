// A PEFT adapter's adapter_config.json -> LoraConfig (peft_type, rank, alpha,
// dropout, target_modules as names, full module paths or "all-linear", and the
// fields plain LoRA refuses).
#include <nlohmann/json.hpp>

#include "engine/lora_files.hpp"
#include "fuzz_target.hpp"

DUET_FUZZ_TARGET(adapter_config, data, size) {
  const auto json = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;  // not JSON: read_adapter_config reports that before lora_config_from_json
  try {
    (void)duet::engine::lora_config_from_json(json, "fuzz/adapter_config.json");
  } catch (const duet::Error&) {
  }
  return 0;
}
