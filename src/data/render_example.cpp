#include "data/render_example.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "util/error.hpp"

namespace duet::data {

namespace {

size_t common_prefix(std::string_view a, std::string_view b) {
  return static_cast<size_t>(std::mismatch(a.begin(), a.begin() + std::min(a.size(), b.size()), b.begin()).first -
                             a.begin());
}

RenderedExample render_conversation(const ChatTemplate& t, const Conversation& prompt,
                                    const std::vector<Conversation>& responses) {
  RenderedExample out;
  std::string prompt_text = render_chat(t, prompt, true);
  std::vector<std::string> full;
  size_t keep = prompt_text.size();
  for (const auto& response : responses) {
    Conversation messages = prompt;
    messages.insert(messages.end(), response.begin(), response.end());
    full.push_back(render_chat(t, messages, false));
    keep = std::min(keep, common_prefix(prompt_text, full.back()));
  }
  // Cut at a code point boundary (Python compares code points, not bytes).
  while (keep > 0 && keep < prompt_text.size() && (static_cast<unsigned char>(prompt_text[keep]) & 0xC0) == 0x80)
    --keep;
  prompt_text.resize(keep);
  out.prompt = std::move(prompt_text);
  for (auto& f : full) out.responses.push_back(f.substr(keep));
  return out;
}

}  // namespace

std::optional<RenderedExample> render_example(const RawExample& ex, const TemplateChoice& choice,
                                              std::string_view file, ProblemSink& sink) {
  if (ex.format == Format::standard && !choice.apply_to_text) {
    return RenderedExample{ex.prompt_text, ex.response_texts, true};
  }
  if (!choice.chat_template)
    fail("{}:{}: conversational examples need a chat template, and there is {}; pass --chat-template NAME ({})", file,
         ex.line, choice.description, fmt::join(builtin_template_names(), ", "));
  const ChatTemplate& t = *choice.chat_template;
  try {
    if (ex.format == Format::standard) {
      std::vector<Conversation> responses;
      for (const auto& r : ex.response_texts) responses.push_back({Message{"assistant", r}});
      return render_conversation(t, {Message{"user", ex.prompt_text}}, responses);
    }
    return render_conversation(t, ex.prompt_chat, ex.response_chats);
  } catch (const Error& e) {
    sink.add(problem::unsupported, "prompt", e.what());
    return std::nullopt;
  }
}

}  // namespace duet::data
