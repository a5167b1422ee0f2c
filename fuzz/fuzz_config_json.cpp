// config.json -> ModelConfig (architectures, sizes, RoPE scaling, dtype, ...),
// then, when it parses, RoPE's inverse frequencies from it.
#include <nlohmann/json.hpp>

#include "fuzz_target.hpp"
#include "model/config.hpp"
#include "model/rope.hpp"

DUET_FUZZ_TARGET(config_json, data, size) {
  const auto json = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;  // not JSON: load_config reports that before parse_config
  try {
    const auto config = duet::model::parse_config(json, "fuzz/config.json");
    (void)duet::model::rope_inverse_frequencies(config);
  } catch (const duet::Error&) {
  }
  return 0;
}
