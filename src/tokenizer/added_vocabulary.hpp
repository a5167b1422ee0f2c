#pragma once
// Added (and special) tokens, matched in the text before the model sees it, as
// HF's AddedVocabulary: tokens with normalized=false are found in the raw
// text, those with normalized=true in the normalized text (against their
// normalized content). Matching is leftmost-longest, then single_word, lstrip
// and rstrip are applied.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace duet::tok {

using TokenId = uint32_t;
class Normalizer;

struct AddedToken {
  std::string content;
  TokenId id;
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

// A section of text: an added token (id set) or text for the normal pipeline.
struct TextSection {
  size_t begin, end;
  std::optional<TokenId> id;
};

class AddedVocabulary {
 public:
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);
  static AddedVocabulary from_json(const nlohmann::json& list, const Normalizer* normalizer);

  // Cuts `text` into sections; `normalized_stage` selects which tokens are
  // looked for (normalized=false ones on raw text, normalized=true ones after
  // normalization).
  void split(std::string_view text, bool normalized_stage, std::vector<TextSection>& out) const;
  bool has_normalized_tokens() const { return !normalized_.patterns.empty(); }

  const AddedToken* by_id(TokenId id) const;
  std::optional<TokenId> by_content(std::string_view content) const;
  std::optional<TokenId> max_id() const;

 private:
  // Patterns grouped by first byte, longest first, for leftmost-longest search.
  struct Matcher {
    std::vector<std::pair<std::string, size_t>> patterns;  // (pattern, token index)
    std::vector<std::vector<size_t>> by_first_byte = std::vector<std::vector<size_t>>(256);
    void add(std::string pattern, size_t token);
    void finalize();
    // Leftmost-longest match at or after `from`: (begin, end, token index).
    bool find(std::string_view text, size_t from, size_t& begin, size_t& end, size_t& token) const;
  };
  std::vector<AddedToken> tokens_;
  std::unordered_map<TokenId, size_t> index_of_id_;
  Matcher raw_, normalized_;
};

}  // namespace duet::tok
