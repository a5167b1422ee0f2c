#include "data/implicit_prompt.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace duet::data {

size_t common_message_prefix(const std::vector<Conversation>& conversations) {
  if (conversations.empty()) return 0;
  size_t n = conversations[0].size();
  for (const auto& c : conversations) {
    size_t i = 0;
    while (i < std::min(n, c.size()) && c[i] == conversations[0][i]) ++i;
    n = i;
  }
  return n;
}

size_t common_text_prefix(const std::vector<std::string>& texts) {
  if (texts.empty()) return 0;
  const std::string& first = texts[0];
  size_t n = first.size();
  for (const auto& t : texts) {
    auto [a, b] = std::mismatch(first.begin(), first.begin() + std::min(n, t.size()), t.begin());
    n = static_cast<size_t>(a - first.begin());
  }
  // Back up to the start of a code point (continuation bytes are 10xxxxxx).
  while (n > 0 && n < first.size() && (static_cast<unsigned char>(first[n]) & 0xC0) == 0x80) --n;
  const bool all_continue = std::all_of(texts.begin(), texts.end(), [&](const std::string& t) { return t.size() > n; });
  if (n > 0 && all_continue && first[n - 1] == ' ') --n;
  return n;
}

void split_implicit_prompt(RawExample& ex, std::vector<Conversation>& full, const std::vector<std::string>& names,
                          const ColumnNames& c, ProblemSink& sink) {
  const size_t n = common_message_prefix(full);
  if (n == 0) {
    sink.add(problem::missing_field, c.prompt,
             fmt::format("no '{}' column, and {} and {} do not start with the same message (implicit prompt format)",
                         c.prompt, names[0], names[1]));
    return;
  }
  for (size_t r = 0; r < full.size(); ++r)
    if (full[r].size() == n) {
      sink.add(problem::empty, names[r],
               fmt::format("no message is left for the response after the {} message(s) it shares with the others "
                           "(implicit prompt format)",
                           n));
      return;
    }
  ex.prompt_chat.assign(full[0].begin(), full[0].begin() + static_cast<ptrdiff_t>(n));
  for (auto& conv : full) ex.response_chats.emplace_back(conv.begin() + static_cast<ptrdiff_t>(n), conv.end());
}

void split_implicit_prompt(RawExample& ex, std::vector<std::string>& full, const std::vector<std::string>& names,
                          const ColumnNames& c, ProblemSink& sink) {
  const size_t n = common_text_prefix(full);
  if (n == 0) {
    sink.add(problem::missing_field, c.prompt,
             fmt::format("no '{}' column, and {} and {} do not start with the same text (implicit prompt format)",
                         c.prompt, names[0], names[1]));
    return;
  }
  for (size_t r = 0; r < full.size(); ++r)
    if (full[r].size() == n) {
      sink.add(problem::empty, names[r],
               "nothing is left for the response after the text it shares with the others (implicit prompt format)");
      return;
    }
  ex.prompt_text = full[0].substr(0, n);
  for (auto& t : full) ex.response_texts.push_back(t.substr(n));
}

}  // namespace duet::data
