// One JSONL dataset line -> RawExample or its problems (every TRL format:
// standard, conversational, implicit prompt, ranked, pre-tokenized).
#include <string_view>

#include "data/parse_example.hpp"
#include "fuzz_target.hpp"

DUET_FUZZ_TARGET(example_line, data, size) {
  try {
    const duet::data::ColumnNames columns;
    (void)duet::data::parse_example_line(std::string_view(reinterpret_cast<const char*>(data), size), 1, columns);
  } catch (const duet::Error&) {
  }
  return 0;
}
