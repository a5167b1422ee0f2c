#include "data/report.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "util/error.hpp"

namespace duet::data {

OnError parse_on_error(std::string_view name) {
  if (name == "fail") return OnError::fail;
  if (name == "skip") return OnError::skip;
  fail("--on-error '{}': use 'fail' (stop on any bad example) or 'skip' (drop bad examples and count them)", name);
}

int64_t DataReport::dropped_total() const {
  int64_t n = 0;
  for (const auto& [reason, count] : dropped) n += count;
  return n;
}

void enforce_on_error(const DataReport& report, OnError on_error) {
  if (on_error == OnError::skip || report.problems.empty()) return;
  constexpr size_t kShown = 5;
  std::string first;
  for (size_t i = 0; i < std::min(kShown, report.problems.size()); ++i)
    first += "\n  " + format_problem(report.file, report.problems[i]);
  const size_t n = report.problems.size();
  fail("{} problem{} in {} (--on-error fail){}{}\nList them all with `duet data check --data {}`, or drop those "
       "examples with --on-error skip.",
       n, n == 1 ? "" : "s", report.file, first, n > kShown ? fmt::format("\n  ... and {} more", n - kShown) : "",
       report.file);
}

}  // namespace duet::data
