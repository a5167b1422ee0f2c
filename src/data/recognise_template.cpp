// Recognising a Hugging Face chat_template by the substrings that tell the
// families apart. No Jinja is evaluated: a template is either one of the
// built-in renderers (with the parameters read from its literals) or not
// recognised, and the caller says so.
#include <fmt/format.h>

#include "data/chat_template.hpp"

namespace duet::data {

namespace {

bool has(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

// Python/Jinja string-literal escapes -> text.
std::string unescape(std::string_view raw) {
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\' || i + 1 == raw.size()) {
      out += raw[i];
      continue;
    }
    const char c = raw[++i];
    out += c == 'n' ? '\n' : c == 't' ? '\t' : c;
  }
  return out;
}

// The literal default system prompt of a ChatML template: text written
// directly after "<|im_start|>system\n" inside one string literal, up to
// "<|im_end|>". A quote right after the newline means the system text comes
// from the messages instead.
std::string chatml_default_system(std::string_view jinja) {
  constexpr std::string_view head = "<|im_start|>system";
  for (size_t at = jinja.find(head); at != std::string_view::npos; at = jinja.find(head, at + 1)) {
    size_t p = at + head.size();
    if (jinja.substr(p, 2) == "\\n") p += 2;
    else if (jinja.substr(p, 1) == "\n") p += 1;
    else continue;
    const size_t end = jinja.find("<|im_end|>", p);
    if (end == std::string_view::npos) continue;
    const std::string_view raw = jinja.substr(p, end - p);
    if (raw.empty() || raw.find_first_of("'\"") != std::string_view::npos) continue;
    return unescape(raw);
  }
  return {};
}

// `set date_string = "26 Jul 2024"` -> 26 Jul 2024.
std::string llama_date_string(std::string_view jinja) {
  constexpr std::string_view key = "date_string = \"";
  const size_t at = jinja.find(key);
  if (at == std::string_view::npos) return {};
  const size_t end = jinja.find('"', at + key.size());
  if (end == std::string_view::npos) return {};
  return std::string(jinja.substr(at + key.size(), end - at - key.size()));
}

std::optional<ChatTemplate> recognise_llama3(std::string_view jinja, std::string& note) {
  if (!has(jinja, "Cutting Knowledge Date")) {
    ChatTemplate t = builtin_template("llama3");
    if (!has(jinja, "add_generation_prompt"))
      note = "this template adds the assistant header even without add_generation_prompt; duet adds it only to "
             "prompts, as the official Llama 3 template does";
    return t;
  }
  ChatTemplate t = builtin_template("llama3.1");
  if (std::string date = llama_date_string(jinja); !date.empty()) t.date_string = date;
  if (has(jinja, "strftime_now"))
    note = fmt::format("Hugging Face fills 'Today Date' with the current date here; duet uses the template's fixed "
                       "default '{}' so that runs are reproducible",
                       t.date_string);
  return t;
}

std::optional<ChatTemplate> recognise_chatml(std::string_view jinja, std::string& note) {
  ChatTemplate t = builtin_template("chatml");
  t.default_system = chatml_default_system(jinja);
  t.think_blocks = has(jinja, "<think>");
  t.bos_at_start = has(jinja, "bos_token");
  for (std::string_view preset : {"qwen2", "qwen2.5", "qwen3"}) {
    const ChatTemplate p = builtin_template(preset);
    if (p.default_system == t.default_system && p.think_blocks == t.think_blocks && !t.bos_at_start) t.name = preset;
  }
  if (has(jinja, "enable_thinking"))
    note = "rendered without enable_thinking (Hugging Face's default), as TRL does";
  return t;
}

}  // namespace

std::optional<ChatTemplate> recognise_chat_template(std::string_view jinja, std::string& note) {
  note.clear();
  if (has(jinja, "<|start_header_id|>") && has(jinja, "<|eot_id|>")) return recognise_llama3(jinja, note);
  if (has(jinja, "<|im_start|>") && has(jinja, "<|im_end|>")) return recognise_chatml(jinja, note);
  if (has(jinja, "[INST]")) {
    if (has(jinja, "<<SYS>>")) return builtin_template("llama2");
    // Mistral v0.1/v0.2's first template: "[INST] " + content + " [/INST]", no
    // system role. Later versions (system_message, tools, "[/INST]" without
    // the space) render differently.
    if (has(jinja, "' [/INST]'") && !has(jinja, "system_message") && !has(jinja, "[AVAILABLE_TOOLS]") &&
        !has(jinja, "[TOOL_CALLS]"))
      return builtin_template("mistral");
    note = "an [INST] template of a later Mistral version (system message, tools or '[/INST]' spacing differ from "
           "the built-in mistral and llama2 renderers)";
    return std::nullopt;
  }
  note = "none of the built-in families' markers (<|start_header_id|>, <|im_start|>, [INST]) appear in it";
  return std::nullopt;
}

}  // namespace duet::data
