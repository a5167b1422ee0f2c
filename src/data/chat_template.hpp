#pragma once
// Built-in chat templates: what Hugging Face's apply_chat_template produces
// for the template families duet trains, without a Jinja engine.
//   llama3    <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
//   llama3.1  the same, always opening with a system turn that carries the
//             "Cutting Knowledge Date / Today Date" preamble
//   llama2    <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] answer </s>
//   mistral   <s>[INST] ... [/INST]answer</s>   (v0.1/v0.2: no system role)
//   chatml    <|im_start|>role\n...<|im_end|>\n, with presets qwen2 and
//             qwen2.5 (default system prompt) and qwen3 (<think> blocks)
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/raw_example.hpp"

namespace duet::data {

enum class TemplateFamily { llama3, llama2, mistral, chatml };

struct ChatTemplate {
  std::string name;  // a builtin_template_names() entry
  TemplateFamily family = TemplateFamily::chatml;
  std::string bos_token;  // the texts the template inserts for bos_token / eos_token
  std::string eos_token;
  // llama3: open with a system turn holding "Cutting Knowledge Date: December
  // 2023\nToday Date: <date_string>\n\n" (Llama 3.1 and later).
  bool system_preamble = false;
  std::string date_string = "26 Jul 2024";
  // chatml: the system prompt inserted when a conversation has none (Qwen2/2.5).
  std::string default_system;
  // chatml: Qwen3's <think> handling of assistant turns after the last user turn.
  bool think_blocks = false;
  // chatml: the template starts with bos_token.
  bool bos_at_start = false;
};

std::vector<std::string_view> builtin_template_names();

// A preset by name (with its family's usual special tokens); duet::fail on an
// unknown name, listing the known ones.
ChatTemplate builtin_template(std::string_view name);

// Recognises a Hugging Face chat_template (Jinja source) by distinctive
// substrings. On success `note` may hold a remark on what differs from the
// official template; on failure it says why nothing was recognised.
std::optional<ChatTemplate> recognise_chat_template(std::string_view jinja, std::string& note);

// The text apply_chat_template(messages, add_generation_prompt=...) gives.
// Messages are validated by the parser (roles system/user/assistant, non-empty
// contents); duet::fail on an order the template rejects (e.g. llama2 and
// mistral need user/assistant alternation, mistral has no system role).
std::string render_chat(const ChatTemplate& t, const Conversation& messages, bool add_generation_prompt);

// "llama3 (bos <|begin_of_text|>, eos <|eot_id|> ...)": for reports.
std::string describe_template(const ChatTemplate& t);

}  // namespace duet::data
