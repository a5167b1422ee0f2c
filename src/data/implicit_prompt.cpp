#include "data/implicit_prompt.hpp"

#include <algorithm>

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

}  // namespace duet::data
