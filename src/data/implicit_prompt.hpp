#pragma once
// The implicit-prompt format: only the responses are given, as complete texts
// or conversations; the prompt is their longest common beginning.
#include <cstddef>
#include <string>
#include <vector>

#include "data/raw_example.hpp"

namespace duet::data {

// Number of leading messages shared by all conversations.
size_t common_message_prefix(const std::vector<Conversation>& conversations);

// Byte length of the shared beginning of all texts, cut at a code point
// boundary; as TRL's extract_prompt, a space just before the first difference
// stays with the responses. Texts must be valid UTF-8.
size_t common_text_prefix(const std::vector<std::string>& texts);

}  // namespace duet::data
