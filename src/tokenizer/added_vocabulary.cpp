#include "tokenizer/added_vocabulary.hpp"

#include <algorithm>

#include "tokenizer/json_fields.hpp"
#include "tokenizer/normalizer.hpp"
#include "tokenizer/unicode.hpp"
#include "util/utf8.hpp"

namespace duet::tok {

namespace {

bool is_word_char(char32_t c) { return c == '_' || unicode::is_alphanumeric(c); }

}  // namespace

void AddedVocabulary::Matcher::add(std::string pattern, size_t token) {
  if (pattern.empty()) return;
  by_first_byte[static_cast<unsigned char>(pattern[0])].push_back(patterns.size());
  patterns.emplace_back(std::move(pattern), token);
}

void AddedVocabulary::Matcher::finalize() {
  for (auto& list : by_first_byte)
    std::stable_sort(list.begin(), list.end(),
                     [&](size_t a, size_t b) { return patterns[a].first.size() > patterns[b].first.size(); });
}

bool AddedVocabulary::Matcher::find(std::string_view text, size_t from, size_t& begin, size_t& end,
                                    size_t& token) const {
  if (patterns.empty()) return false;
  for (size_t i = from; i < text.size(); ++i) {
    for (size_t p : by_first_byte[static_cast<unsigned char>(text[i])]) {
      const std::string& pat = patterns[p].first;
      if (text.compare(i, pat.size(), pat) == 0) {
        begin = i;
        end = i + pat.size();
        token = patterns[p].second;
        return true;
      }
    }
  }
  return false;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)) {
  for (size_t k = 0; k < tokens_.size(); ++k) {
    const AddedToken& t = tokens_[k];
    index_of_id_[t.id] = k;
    if (t.normalized) {
      std::string pattern = t.content;
      if (normalizer) normalizer->normalize(pattern);
      normalized_.add(std::move(pattern), k);
    } else {
      raw_.add(t.content, k);
    }
  }
  raw_.finalize();
  normalized_.finalize();
}

AddedVocabulary AddedVocabulary::from_json(const json& list, const Normalizer* normalizer) {
  std::vector<AddedToken> tokens;
  if (list.is_null()) return AddedVocabulary({}, normalizer);
  if (!list.is_array()) fail("added_tokens must be a list");
  for (const json& j : list) {
    const std::string where = "added_tokens entry " + j.dump().substr(0, 80);
    AddedToken t;
    t.content = field<std::string>(j, "content", where);
    t.id = field<TokenId>(j, "id", where);
    t.single_word = field_or(j, "single_word", false, where);
    t.lstrip = field_or(j, "lstrip", false, where);
    t.rstrip = field_or(j, "rstrip", false, where);
    t.special = field_or(j, "special", false, where);
    t.normalized = field_or(j, "normalized", !t.special, where);
    if (utf8::find_invalid(t.content)) fail("{}: content is not valid UTF-8", where);
    tokens.push_back(std::move(t));
  }
  return AddedVocabulary(std::move(tokens), normalizer);
}

void AddedVocabulary::split(std::string_view text, bool normalized_stage, std::vector<TextSection>& out) const {
  const Matcher& m = normalized_stage ? normalized_ : raw_;
  size_t start_offset = 0, from = 0, b, e, k;
  while (m.find(text, from, b, e, k)) {
    from = e;  // the next search resumes after this match, kept or not
    const AddedToken& t = tokens_[k];
    if (t.single_word) {
      bool word_before = b > 0 && [&] {
        size_t i = utf8::previous_start(text, b);
        return is_word_char(utf8::next(text, i));
      }();
      bool word_after = e < text.size() && [&] {
        size_t i = e;
        return is_word_char(utf8::next(text, i));
      }();
      if (word_before || word_after) continue;
    }
    if (t.lstrip) {
      size_t nb = b;
      while (nb > start_offset) {
        size_t s = utf8::previous_start(text, nb), i = s;
        if (!unicode::is_whitespace(utf8::next(text, i))) break;
        nb = s;
      }
      b = nb;
    }
    if (t.rstrip) {
      while (e < text.size()) {
        size_t i = e;
        if (!unicode::is_whitespace(utf8::next(text, i))) break;
        e = i;
      }
      from = e;
    }
    if (start_offset < b) out.push_back({start_offset, b, std::nullopt});
    out.push_back({b, e, t.id});
    start_offset = e;
  }
  if (start_offset < text.size()) out.push_back({start_offset, text.size(), std::nullopt});
}

const AddedToken* AddedVocabulary::by_id(TokenId id) const {
  auto it = index_of_id_.find(id);
  return it == index_of_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<TokenId> AddedVocabulary::by_content(std::string_view content) const {
  for (const auto& t : tokens_)
    if (t.content == content) return t.id;
  return std::nullopt;
}

std::optional<TokenId> AddedVocabulary::max_id() const {
  std::optional<TokenId> best;
  for (const auto& t : tokens_) best = std::max(best.value_or(0), t.id);
  return best;
}

}  // namespace duet::tok
