#pragma once
// The implicit-prompt format: only the responses are given, as complete texts
// or conversations; the prompt is their longest common beginning.
#include <cstddef>
#include <string>
#include <vector>

#include "data/columns.hpp"
#include "data/raw_example.hpp"
#include "data/read_fields.hpp"

namespace duet::data {

// Number of leading messages shared by all conversations.
size_t common_message_prefix(const std::vector<Conversation>& conversations);

// Byte length of the shared beginning of all texts, cut at a code point
// boundary; as TRL's extract_prompt, a space just before the first difference
// stays with the responses. Texts must be valid UTF-8.
size_t common_text_prefix(const std::vector<std::string>& texts);

// Splits full responses into ex.prompt_* (the shared beginning) and
// ex.response_* (the rest); a Problem when nothing is shared or a response
// has nothing left. `names` are the responses' field names.
void split_implicit_prompt(RawExample& ex, std::vector<Conversation>& full, const std::vector<std::string>& names,
                           const ColumnNames& c, ProblemSink& sink);
void split_implicit_prompt(RawExample& ex, std::vector<std::string>& full, const std::vector<std::string>& names,
                           const ColumnNames& c, ProblemSink& sink);

}  // namespace duet::data
