#pragma once
// One dataset line (JSON) -> a RawExample, or the problems that stop it.
// Accepted shapes (TRL's, column names configurable):
//   standard         {"prompt": str, "chosen": str, "rejected": str}
//   conversational   {"prompt": [msg..], "chosen": [msg..], "rejected": [msg..]}
//   implicit prompt  no "prompt": chosen/rejected share a leading part (whole
//                    messages, or text) that becomes the prompt
//   ranked           {"prompt": .., "responses": [r0, r1, ..]} best first, k >= 2
//   pre-tokenized    {"prompt_input_ids": [..], "chosen_input_ids": [..],
//                     "rejected_input_ids": [..]}
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "data/columns.hpp"
#include "data/problem.hpp"
#include "data/raw_example.hpp"

namespace duet::data {

struct ParsedLine {
  std::optional<RawExample> example;  // set exactly when problems is empty
  std::vector<Problem> problems;
};

ParsedLine parse_example_line(std::string_view line, int64_t line_number, const ColumnNames& columns);

}  // namespace duet::data
