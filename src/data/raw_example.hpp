#pragma once
// One preference example as read from a dataset line, before any template or
// tokenizer: a prompt and k >= 2 ranked responses (0 = chosen, 1 = rejected),
// held as plain text, as conversations, or as token ids.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace duet::data {

struct Message {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
  bool operator==(const Message&) const = default;
};
using Conversation = std::vector<Message>;

enum class Format {
  standard,        // strings
  conversational,  // message lists
  pretokenized,    // token id lists
};
std::string_view format_name(Format format);

struct RawExample {
  int64_t line = 0;  // 1-based line in the file
  Format format = Format::standard;
  bool implicit_prompt = false;  // the prompt was the responses' common prefix
  bool ranked = false;           // read from a `responses` list

  // Exactly one group is filled, as `format` says.
  std::string prompt_text;
  std::vector<std::string> response_texts;
  Conversation prompt_chat;
  std::vector<Conversation> response_chats;
  std::vector<uint32_t> prompt_ids;
  std::vector<std::vector<uint32_t>> response_ids;

  size_t num_responses() const;
};

}  // namespace duet::data
