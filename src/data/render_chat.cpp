// The Llama 3, Llama 2 and Mistral renderers, each following its official
// Hugging Face template line by line (ChatML is in render_chatml.cpp).
#include <string>

#include "data/chat_template.hpp"
#include "data/python_strip.hpp"
#include "util/error.hpp"

namespace duet::data {

std::string render_chatml(const ChatTemplate& t, const Conversation& messages, bool add_generation_prompt);

namespace {

// Meta-Llama-3(.1)-Instruct: every message is a header block with its content
// trimmed; bos_token opens the text; 3.1 always opens with a system turn
// carrying the date preamble (and the first system message, trimmed).
std::string render_llama3(const ChatTemplate& t, const Conversation& messages, bool add_generation_prompt) {
  std::string out = t.bos_token;
  size_t first = 0;
  if (t.system_preamble) {
    std::string_view system;
    if (!messages.empty() && messages[0].role == "system") {
      system = python_strip(messages[0].content);
      first = 1;
    }
    out += "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: ";
    out += t.date_string;
    out += "\n\n";
    out += system;
    out += "<|eot_id|>";
  }
  for (size_t i = first; i < messages.size(); ++i) {
    out += "<|start_header_id|>";
    out += messages[i].role;
    out += "<|end_header_id|>\n\n";
    out += python_strip(messages[i].content);
    out += "<|eot_id|>";
  }
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

// `offset`: index of loop_messages[0] in the conversation (for the message).
void check_alternation(const ChatTemplate& t, const Conversation& loop_messages, size_t offset) {
  for (size_t i = 0; i < loop_messages.size(); ++i) {
    const bool user_expected = i % 2 == 0;
    if ((loop_messages[i].role == "user") != user_expected || loop_messages[i].role == "system")
      fail("the {} chat template needs {}user/assistant turns alternating, starting with user; message {} is '{}'",
           t.name, t.family == TemplateFamily::llama2 ? "an optional first system message, then " : "",
           i + offset, loop_messages[i].role);
  }
}

// Llama-2-chat: a first system message goes inside the first [INST] block as
// <<SYS>>; every user turn is bos_token + "[INST] " + strip + " [/INST]", every
// assistant turn " " + strip + " " + eos_token. No generation prompt exists.
std::string render_llama2(const ChatTemplate& t, const Conversation& messages) {
  const bool has_system = !messages.empty() && messages[0].role == "system";
  const Conversation loop(messages.begin() + (has_system ? 1 : 0), messages.end());
  check_alternation(t, loop, has_system ? 1 : 0);
  std::string out;
  for (size_t i = 0; i < loop.size(); ++i) {
    std::string content = loop[i].content;
    if (i == 0 && has_system) content = "<<SYS>>\n" + messages[0].content + "\n<</SYS>>\n\n" + content;
    if (loop[i].role == "user") {
      out += t.bos_token;
      out += "[INST] ";
      out += python_strip(content);
      out += " [/INST]";
    } else {
      out += ' ';
      out += python_strip(content);
      out += ' ';
      out += t.eos_token;
    }
  }
  return out;
}

// Mistral-7B-Instruct v0.1/v0.2: bos_token once, "[INST] " + content +
// " [/INST]" for users, content + eos_token for the assistant; no system role.
std::string render_mistral(const ChatTemplate& t, const Conversation& messages) {
  for (size_t i = 0; i < messages.size(); ++i)
    if (messages[i].role == "system")
      fail("the mistral chat template has no system role (message {} is a system message); drop or merge it into "
           "the first user message, or pick another --chat-template",
           i);
  check_alternation(t, messages, 0);
  std::string out = t.bos_token;
  for (const Message& m : messages) {
    if (m.role == "user") {
      out += "[INST] ";
      out += m.content;
      out += " [/INST]";
    } else {
      out += m.content;
      out += t.eos_token;
    }
  }
  return out;
}

}  // namespace

std::string render_chat(const ChatTemplate& t, const Conversation& messages, bool add_generation_prompt) {
  switch (t.family) {
    case TemplateFamily::llama3: return render_llama3(t, messages, add_generation_prompt);
    case TemplateFamily::llama2: return render_llama2(t, messages);
    case TemplateFamily::mistral: return render_mistral(t, messages);
    case TemplateFamily::chatml: return render_chatml(t, messages, add_generation_prompt);
  }
  return {};
}

}  // namespace duet::data
