#pragma once
// Which JSON keys hold each part of an example (TRL's names by default).
#include <string>
#include <string_view>
#include <vector>

namespace duet::data {

struct ColumnNames {
  std::string prompt = "prompt";
  std::string chosen = "chosen";
  std::string rejected = "rejected";
  std::string responses = "responses";  // ranked list, best first (extension)
  std::string prompt_ids = "prompt_input_ids";
  std::string chosen_ids = "chosen_input_ids";
  std::string rejected_ids = "rejected_input_ids";

  // Applies "ROLE=NAME" overrides, ROLE one of prompt, chosen, rejected,
  // responses, prompt_input_ids, chosen_input_ids, rejected_input_ids.
  // duet::fail on an unknown role or a malformed override.
  void apply(std::string_view override_spec);
  void apply(const std::vector<std::string>& override_specs);
};

}  // namespace duet::data
