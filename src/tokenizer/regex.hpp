#pragma once
// PCRE2 (UTF + Unicode properties + JIT) as the regex engine for pre-tokenizer
// patterns. HF tokenizers uses Oniguruma; for the constructs these patterns use
// (\p{L}, \p{N}, \s with Unicode semantics, (?i:...), look-ahead) PCRE2 with
// PCRE2_UCP behaves the same, and it is a maintained Debian library with a JIT.
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct pcre2_real_code_8;

namespace duet::tok {

class Regex {
 public:
  // `literal` treats the pattern as a plain string (HF's {"String": ...}).
  Regex(const std::string& pattern, bool literal);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends every non-overlapping match [begin, end) of `text` (valid UTF-8)
  // to `out`, left to right, as HF's find_iter does: empty matches are skipped
  // by one character.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

  // Replaces every match in `text` by `content` (HF Replace normalizer and decoder).
  void replace_all(std::string& text, const std::string& content) const;

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  pcre2_real_code_8* code_ = nullptr;
};

}  // namespace duet::tok
