#include "data/problem.hpp"

#include <fmt/format.h>

namespace duet::data {

std::string format_problem(std::string_view file, const Problem& p) {
  return fmt::format("{}:{}: {}: {}", file, p.line, p.field, p.message);
}

}  // namespace duet::data
