#include "data/parse_pretokenized.hpp"

#include <fmt/format.h>

namespace duet::data {

using nlohmann::json;

void read_pretokenized(const json& obj, const ColumnNames& c, RawExample& ex, ProblemSink& sink) {
  ex.format = Format::pretokenized;
  const std::string* names[] = {&c.prompt_ids, &c.chosen_ids, &c.rejected_ids};
  std::vector<std::vector<uint32_t>> ids;
  for (const std::string* name : names) {
    auto it = obj.find(*name);
    if (it == obj.end()) {
      sink.add(problem::missing_field, *name,
               fmt::format("missing (the line has: {}); pre-tokenized examples need {}, {} and {}", json_key_list(obj),
                           c.prompt_ids, c.chosen_ids, c.rejected_ids));
      continue;
    }
    if (auto v = read_ids(*it, *name, sink)) ids.push_back(std::move(*v));
  }
  if (ids.size() != 3) return;
  ex.prompt_ids = std::move(ids[0]);
  ex.response_ids = {std::move(ids[1]), std::move(ids[2])};
}

}  // namespace duet::data
