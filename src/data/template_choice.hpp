#pragma once
// Which chat template a run uses: --chat-template auto (recognise the
// tokenizer's), none, or a built-in name.
#include <optional>
#include <string>
#include <string_view>

#include "data/chat_template.hpp"
#include "data/tokenizer_config.hpp"

namespace duet::data {

struct TemplateChoice {
  std::optional<ChatTemplate> chat_template;  // applied to conversational examples
  // Named explicitly: plain-text examples are rendered too, as one user turn
  // (the prompt) and one assistant turn (each response).
  bool apply_to_text = false;
  std::string description;  // what was chosen or recognised, or why none was
};

// `config` may be null (no tokenizer). duet::fail on an unknown name.
TemplateChoice choose_template(std::string_view choice, const TokenizerConfig* config);

}  // namespace duet::data
