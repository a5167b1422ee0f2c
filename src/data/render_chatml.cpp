// ChatML (Qwen2, Qwen2.5, Qwen3 and generic <|im_start|> templates), following
// Qwen's official templates without tools.
#include <string>

#include "data/chat_template.hpp"
#include "data/python_strip.hpp"

namespace duet::data {

namespace {

void append_turn(std::string& out, std::string_view role, std::string_view content) {
  out += "<|im_start|>";
  out += role;
  out += '\n';
  out += content;
  out += "<|im_end|>\n";
}

bool is_tool_response(std::string_view content) {
  return content.starts_with("<tool_response>") && content.ends_with("</tool_response>");
}

// Qwen3: index of the last user message that is not a wrapped tool response
// (messages|length - 1 when there is none).
size_t last_query_index(const Conversation& messages) {
  for (size_t i = messages.size(); i-- > 0;)
    if (messages[i].role == "user" && !is_tool_response(messages[i].content)) return i;
  return messages.size() - 1;
}

// Qwen3's assistant turn: reasoning written inline as <think>...</think> is
// split off; turns after the last user query carry a <think> block (empty when
// there is no reasoning) if they are the last message or have reasoning.
void append_qwen3_assistant(std::string& out, const Conversation& messages, size_t i, size_t last_query) {
  std::string_view full = messages[i].content;
  std::string_view content = full;
  std::string_view reasoning;
  const size_t close = full.find("</think>");
  if (close != std::string_view::npos) {
    content = lstrip_chars(full.substr(full.rfind("</think>") + 8), "\n");
    std::string_view before = rstrip_chars(full.substr(0, close), "\n");
    const size_t open = before.rfind("<think>");
    reasoning = lstrip_chars(open == std::string_view::npos ? before : before.substr(open + 7), "\n");
  }
  out += "<|im_start|>assistant\n";
  const bool last = i + 1 == messages.size();
  if (i > last_query && (last || !reasoning.empty())) {
    out += "<think>\n";
    out += strip_chars(reasoning, "\n");
    out += "\n</think>\n\n";
    out += lstrip_chars(content, "\n");
  } else {
    out += content;
  }
  out += "<|im_end|>\n";
}

}  // namespace

std::string render_chatml(const ChatTemplate& t, const Conversation& messages, bool add_generation_prompt) {
  std::string out = t.bos_at_start ? t.bos_token : std::string();
  const bool has_system = !messages.empty() && messages[0].role == "system";
  if (has_system) append_turn(out, "system", messages[0].content);
  else if (!t.default_system.empty()) append_turn(out, "system", t.default_system);
  const size_t last_query = messages.empty() ? 0 : last_query_index(messages);
  for (size_t i = has_system ? 1 : 0; i < messages.size(); ++i) {
    if (messages[i].role == "assistant" && t.think_blocks) append_qwen3_assistant(out, messages, i, last_query);
    else append_turn(out, messages[i].role, messages[i].content);
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

}  // namespace duet::data
