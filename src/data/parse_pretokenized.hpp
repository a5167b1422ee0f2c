#pragma once
// The pre-tokenized format: prompt_input_ids, chosen_input_ids and
// rejected_input_ids (names from ColumnNames), used exactly as given.
#include <nlohmann/json.hpp>

#include "data/columns.hpp"
#include "data/raw_example.hpp"
#include "data/read_fields.hpp"

namespace duet::data {

// Fills ex (format pretokenized) or records problems.
void read_pretokenized(const nlohmann::json& obj, const ColumnNames& c, RawExample& ex, ProblemSink& sink);

}  // namespace duet::data
