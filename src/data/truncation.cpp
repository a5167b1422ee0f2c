#include "data/truncation.hpp"

#include <algorithm>

#include "util/error.hpp"

namespace duet::data {

Truncation resolve_truncation(int64_t max_length, int64_t max_prompt_length) {
  if (max_prompt_length < kAutoMaxPromptLength)
    fail("--max-prompt-length must be >= 0 (0 = no limit), or -1 for min(512, --max-length / 2); got {}",
         max_prompt_length);
  Truncation t{max_length, max_prompt_length};
  if (max_prompt_length == kAutoMaxPromptLength)
    t.max_prompt_length = max_length > 0 ? std::min(kDefaultMaxPromptLength, max_length / 2) : 0;
  check_truncation(t);
  return t;
}

void check_truncation(const Truncation& t) {
  if (t.max_length < 0) fail("--max-length must be >= 0 (0 = no limit), got {}", t.max_length);
  if (t.max_prompt_length < 0) fail("--max-prompt-length must be >= 0 (0 = no limit), got {}", t.max_prompt_length);
  if (t.max_length > 0 && t.max_prompt_length >= t.max_length)
    fail("--max-prompt-length ({}) must be smaller than --max-length ({}) to leave room for the responses",
         t.max_prompt_length, t.max_length);
}

TruncationOutcome truncate_example(layout::TokenizedExample& ex, const Truncation& t) {
  TruncationOutcome out;
  auto& prompt = ex.prompt;
  if (t.max_prompt_length > 0 && static_cast<int64_t>(prompt.size()) > t.max_prompt_length) {
    prompt.erase(prompt.begin(), prompt.end() - t.max_prompt_length);
    out.prompt_truncated = true;
  }
  if (t.max_length > 0) {
    const int64_t room = t.max_length - static_cast<int64_t>(prompt.size());
    if (room <= 0) {
      out.drop_reason = drop_reason::prompt_fills_max_length;
      return out;
    }
    for (auto& r : ex.responses)
      if (static_cast<int64_t>(r.size()) > room) {
        r.resize(static_cast<size_t>(room));
        out.responses_truncated = true;
      }
  }
  if (out.responses_truncated)
    for (size_t j = 1; j < ex.responses.size(); ++j)
      for (size_t i = 0; i < j; ++i)
        if (ex.responses[i] == ex.responses[j]) {
          out.drop_reason = drop_reason::identical_after_truncation;
          return out;
        }
  return out;
}

}  // namespace duet::data
