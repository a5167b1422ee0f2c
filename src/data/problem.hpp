#pragma once
// A problem found in one line of a dataset: where (file:line), which field,
// what kind (for counting) and a sentence saying what is wrong and what to do.
#include <cstdint>
#include <string>
#include <string_view>

namespace duet::data {

// Kinds of problems, used as keys when counting dropped examples.
namespace problem {
inline constexpr std::string_view malformed_json = "malformed_json";
inline constexpr std::string_view invalid_utf8 = "invalid_utf8";
inline constexpr std::string_view missing_field = "missing_field";
inline constexpr std::string_view wrong_type = "wrong_type";
inline constexpr std::string_view empty = "empty";
inline constexpr std::string_view identical = "identical_responses";
inline constexpr std::string_view unsupported = "unsupported_conversation";
inline constexpr std::string_view token_id = "token_id_out_of_range";
inline constexpr std::string_view too_long = "longer_than_pack_tokens";
}  // namespace problem

struct Problem {
  int64_t line = 0;    // 1-based line in the file
  std::string field;   // e.g. "chosen", "prompt[2].content", "(line)"
  std::string kind;    // one of problem::*
  std::string message;
};

// "file:line: field: message"
std::string format_problem(std::string_view file, const Problem& p);

}  // namespace duet::data
