#pragma once
// What reading a dataset found: counts of examples read, kept, dropped (by
// reason) and truncated, the formats seen, and every problem with file:line.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "data/problem.hpp"
#include "data/truncation.hpp"

namespace duet::data {

enum class OnError {
  fail,  // any problem stops the run (after counting them all)
  skip,  // examples with problems are dropped and counted
};
// "fail" / "skip"; duet::fail otherwise.
OnError parse_on_error(std::string_view name);

struct DataReport {
  std::string file;
  std::string compression;           // "none", "gzip", "zstd"
  std::string template_description;  // which chat template, or why none
  bool tokenized = false;            // false: text examples were only parsed (no tokenizer)
  int64_t examples_read = 0;         // non-blank lines
  int64_t kept = 0;
  std::map<std::string, int64_t> dropped;  // reason (a problem kind or a truncation drop) -> count
  int64_t prompt_truncated = 0;            // examples whose prompt was cut
  int64_t responses_truncated = 0;         // examples with at least one response cut
  Truncation truncation;                   // the limits applied (0 = none)
  std::map<std::string, int64_t> formats;  // e.g. "conversational (implicit prompt)" -> count
  std::vector<Problem> problems;           // in file order
  std::vector<std::string> notes;

  int64_t dropped_total() const;
};

// With OnError::fail and problems found: duet::fail with their count, the
// first few, and what to do (`duet data check`, --on-error skip).
void enforce_on_error(const DataReport& report, OnError on_error);

}  // namespace duet::data
