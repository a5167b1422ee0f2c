#include "data/columns.hpp"

#include <utility>

#include "util/error.hpp"

namespace duet::data {

void ColumnNames::apply(std::string_view spec) {
  const size_t eq = spec.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == spec.size())
    fail("--column '{}': expected ROLE=NAME, e.g. --column prompt=question", spec);
  const std::string_view role = spec.substr(0, eq);
  std::string name(spec.substr(eq + 1));
  const std::pair<std::string_view, std::string*> roles[] = {
      {"prompt", &prompt},
      {"chosen", &chosen},
      {"rejected", &rejected},
      {"responses", &responses},
      {"prompt_input_ids", &prompt_ids},
      {"chosen_input_ids", &chosen_ids},
      {"rejected_input_ids", &rejected_ids},
  };
  for (const auto& [known, target] : roles)
    if (role == known) {
      *target = std::move(name);
      return;
    }
  fail("--column '{}': unknown role '{}'; use prompt, chosen, rejected, responses, prompt_input_ids, "
       "chosen_input_ids or rejected_input_ids",
       spec, role);
}

void ColumnNames::apply(const std::vector<std::string>& specs) {
  for (const auto& s : specs) apply(s);
}

}  // namespace duet::data
