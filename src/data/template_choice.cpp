#include "data/template_choice.hpp"

#include <fmt/format.h>

namespace duet::data {

namespace {

// The tokenizer's own special-token texts replace the preset's.
void use_config_tokens(ChatTemplate& t, const TokenizerConfig* config) {
  if (!config) return;
  if (config->bos_token) t.bos_token = *config->bos_token;
  if (config->eos_token && (t.family == TemplateFamily::llama2 || t.family == TemplateFamily::mistral))
    t.eos_token = *config->eos_token;
}

}  // namespace

TemplateChoice choose_template(std::string_view choice, const TokenizerConfig* config) {
  TemplateChoice out;
  if (choice == "none") {
    out.description = "none (--chat-template none)";
    return out;
  }
  if (choice != "auto") {
    ChatTemplate t = builtin_template(choice);
    use_config_tokens(t, config);
    out.description = fmt::format("{} (chosen by --chat-template)", describe_template(t));
    out.chat_template = std::move(t);
    out.apply_to_text = true;
    return out;
  }
  if (!config || !config->chat_template) {
    out.description = config && !config->file.empty()
                          ? fmt::format("none ({} has no chat_template)", config->file.string())
                          : std::string("none (no tokenizer_config.json)");
    return out;
  }
  std::string note;
  auto t = recognise_chat_template(*config->chat_template, note);
  if (!t) {
    out.description = fmt::format("none: the chat_template in {} was not recognised ({})",
                                   config->chat_template_origin, note);
    return out;
  }
  use_config_tokens(*t, config);
  out.description = fmt::format("{} (recognised in {}{}{})", describe_template(*t), config->chat_template_origin,
                                note.empty() ? "" : "; ", note);
  out.chat_template = std::move(*t);
  return out;
}

}  // namespace duet::data
