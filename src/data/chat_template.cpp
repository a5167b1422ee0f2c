#include "data/chat_template.hpp"

#include <fmt/format.h>

#include "util/error.hpp"

namespace duet::data {

namespace {
constexpr std::string_view kQwen2System = "You are a helpful assistant.";
constexpr std::string_view kQwen25System = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
}  // namespace

std::vector<std::string_view> builtin_template_names() {
  return {"llama3", "llama3.1", "llama2", "mistral", "chatml", "qwen2", "qwen2.5", "qwen3"};
}

ChatTemplate builtin_template(std::string_view name) {
  ChatTemplate t;
  t.name = std::string(name);
  if (name == "llama3" || name == "llama3.1") {
    t.family = TemplateFamily::llama3;
    t.bos_token = "<|begin_of_text|>";
    t.eos_token = "<|eot_id|>";
    t.system_preamble = name == "llama3.1";
  } else if (name == "llama2" || name == "mistral") {
    t.family = name == "llama2" ? TemplateFamily::llama2 : TemplateFamily::mistral;
    t.bos_token = "<s>";
    t.eos_token = "</s>";
  } else if (name == "chatml" || name == "qwen2" || name == "qwen2.5" || name == "qwen3") {
    t.family = TemplateFamily::chatml;
    t.eos_token = "<|im_end|>";
    if (name == "qwen2") t.default_system = kQwen2System;
    if (name == "qwen2.5") t.default_system = kQwen25System;
    t.think_blocks = name == "qwen3";
  } else {
    fail("unknown chat template '{}'; built-in templates: {} (or 'auto' to recognise the tokenizer's, 'none' for "
         "plain text)",
         name, fmt::join(builtin_template_names(), ", "));
  }
  return t;
}

std::string describe_template(const ChatTemplate& t) {
  std::string s = t.name;
  if (t.family == TemplateFamily::llama2 || t.family == TemplateFamily::mistral || t.bos_at_start ||
      t.family == TemplateFamily::llama3)
    s += fmt::format(", bos {}", t.bos_token);
  if (t.family == TemplateFamily::llama2 || t.family == TemplateFamily::mistral)
    s += fmt::format(", eos {}", t.eos_token);
  if (t.system_preamble) s += fmt::format(", system preamble dated '{}'", t.date_string);
  if (!t.default_system.empty()) s += fmt::format(", default system prompt \"{}\"", t.default_system);
  if (t.think_blocks) s += ", <think> blocks on the final assistant turn";
  return s;
}

}  // namespace duet::data
