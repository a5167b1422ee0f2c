#pragma once
// The truncation policy (docs/data.md):
//  1. max_prompt_length: the prompt keeps its last tokens (left-truncated),
//     so the turn being answered survives;
//  2. max_length bounds every chain prompt + response: each response keeps its
//     first max_length - prompt tokens (so its end-of-turn/EOS may go);
//  3. an example is dropped when the prompt leaves no room for any response
//     token, or when truncation made two responses identical.
#include <cstdint>
#include <string>
#include <string_view>

#include "layout/example.hpp"

namespace duet::data {

struct Truncation {
  int64_t max_length = 0;         // 0 = no limit
  int64_t max_prompt_length = 0;  // 0 = no limit
};

// The defaults of every command that tokenizes a dataset (duet train, ref,
// logprobs, data stats, data check), TRL's DPOConfig values: --max-length 1024,
// and --max-prompt-length kAutoMaxPromptLength, which means
// min(512, max_length / 2) so that --max-length alone works.
inline constexpr int64_t kDefaultMaxLength = 1024;
inline constexpr int64_t kDefaultMaxPromptLength = 512;
inline constexpr int64_t kAutoMaxPromptLength = -1;

// The limits from the two options' values: max_prompt_length
// kAutoMaxPromptLength becomes min(512, max_length / 2), or no limit when
// max_length is 0 (no limit). Checked with check_truncation.
Truncation resolve_truncation(int64_t max_length, int64_t max_prompt_length);

namespace drop_reason {
inline constexpr std::string_view prompt_fills_max_length = "prompt_fills_max_length";
inline constexpr std::string_view identical_after_truncation = "identical_after_truncation";
}  // namespace drop_reason

struct TruncationOutcome {
  bool prompt_truncated = false;
  bool responses_truncated = false;
  std::string drop_reason;  // empty = kept
};

// duet::fail when a limit is negative or max_prompt_length >= max_length.
void check_truncation(const Truncation& t);

TruncationOutcome truncate_example(layout::TokenizedExample& example, const Truncation& t);

}  // namespace duet::data
