#include "tokenizer/pre_tokenizer.hpp"

#include <algorithm>
#include <functional>
#include <vector>

#include "tokenizer/byte_level.hpp"
#include "tokenizer/json_fields.hpp"
#include "tokenizer/regex.hpp"
#include "tokenizer/unicode.hpp"
#include "util/utf8.hpp"

namespace duet::tok {

namespace {

// A section of a piece: [begin, end) and whether the pattern matched it.
struct Section {
  size_t begin, end;
  bool is_match;
};
using Sections = std::vector<Section>;

// Sections covering all of `text` from a list of matches (HF Pattern::find_matches).
void cover(std::string_view text, const std::vector<std::pair<size_t, size_t>>& matches, bool invert,
           Sections& out) {
  out.clear();
  size_t prev = 0;
  for (auto [b, e] : matches) {
    if (prev != b) out.push_back({prev, b, invert});
    out.push_back({b, e, !invert});
    prev = e;
  }
  if (prev != text.size()) out.push_back({prev, text.size(), invert});
}

// Applies a split behavior to sections, exactly as HF NormalizedString::split,
// and appends the kept parts of `piece` to `out`.
void emit(const PieceList& in, const Piece& piece, const Sections& sections, SplitBehavior behavior,
          PieceList& out) {
  thread_local Sections parts;  // {begin, end, remove}
  parts.clear();
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (auto s : sections) parts.push_back({s.begin, s.end, false});
      break;
    case SplitBehavior::Removed:
      for (auto s : sections) parts.push_back({s.begin, s.end, s.is_match});
      break;
    case SplitBehavior::Contiguous:
      for (auto s : sections) {
        if (s.is_match == previous_match && !parts.empty())
          parts.back().end = s.end;
        else
          parts.push_back({s.begin, s.end, false});
        previous_match = s.is_match;
      }
      break;
    case SplitBehavior::MergedWithPrevious:
      for (auto s : sections) {
        if (s.is_match && !previous_match && !parts.empty())
          parts.back().end = s.end;
        else
          parts.push_back({s.begin, s.end, false});
        previous_match = s.is_match;
      }
      break;
    case SplitBehavior::MergedWithNext:
      for (size_t k = sections.size(); k-- > 0;) {
        auto s = sections[k];
        if (s.is_match && !previous_match && !parts.empty())
          parts.back().begin = s.begin;
        else
          parts.push_back({s.begin, s.end, false});
        previous_match = s.is_match;
      }
      std::reverse(parts.begin(), parts.end());
      break;
  }
  std::string_view text = in.view(piece);
  for (auto p : parts)
    if (!p.is_match) out.add(text.substr(p.begin, p.end - p.begin), piece.at_text_start && p.begin == 0);
}

// Runs `split_one` on every piece, collecting into scratch, then swaps.
template <typename SplitOne>
void for_each_piece(PieceList& pieces, PieceList& scratch, SplitOne&& split_one) {
  scratch.clear();
  for (const Piece& p : pieces.pieces) split_one(pieces, p, scratch);
  std::swap(pieces, scratch);
}

// Sections where each character satisfying `pred` is a match of its own.
void char_matches(std::string_view text, const std::function<bool(char32_t)>& pred,
                  std::vector<std::pair<size_t, size_t>>& out) {
  out.clear();
  for (size_t i = 0; i < text.size();) {
    size_t b = i;
    if (pred(utf8::next(text, i))) out.emplace_back(b, i);
  }
}

class RegexSplit final : public PreTokenizer {
 public:
  RegexSplit(const PatternSpec& p, SplitBehavior behavior, bool invert)
      : regex_(p.text, p.literal), behavior_(behavior), invert_(invert) {}
  void apply(PieceList& pieces, PieceList& scratch) const override {
    thread_local std::vector<std::pair<size_t, size_t>> matches;
    thread_local Sections sections;
    for_each_piece(pieces, scratch, [&](const PieceList& in, const Piece& p, PieceList& out) {
      matches.clear();
      regex_.find_all(in.view(p), matches);
      cover(in.view(p), matches, invert_, sections);
      emit(in, p, sections, behavior_, out);
    });
  }

 private:
  Regex regex_;
  SplitBehavior behavior_;
  bool invert_;
};

class CharSplit final : public PreTokenizer {
 public:
  CharSplit(std::function<bool(char32_t)> pred, SplitBehavior behavior)
      : pred_(std::move(pred)), behavior_(behavior) {}
  void apply(PieceList& pieces, PieceList& scratch) const override {
    thread_local std::vector<std::pair<size_t, size_t>> matches;
    thread_local Sections sections;
    for_each_piece(pieces, scratch, [&](const PieceList& in, const Piece& p, PieceList& out) {
      char_matches(in.view(p), pred_, matches);
      cover(in.view(p), matches, false, sections);
      emit(in, p, sections, behavior_, out);
    });
  }

 private:
  std::function<bool(char32_t)> pred_;
  SplitBehavior behavior_;
};

// GPT-2's pattern, used by ByteLevel when use_regex is set.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space) {
    if (use_regex) split_ = std::make_unique<RegexSplit>(PatternSpec{kGpt2Pattern, false}, SplitBehavior::Isolated, false);
  }
  void apply(PieceList& pieces, PieceList& scratch) const override {
    if (add_prefix_space_) {
      for_each_piece(pieces, scratch, [](const PieceList& in, const Piece& p, PieceList& out) {
        std::string_view t = in.view(p);
        uint32_t b = out.open();
        if (t.front() != ' ') out.text.push_back(' ');
        out.text.append(t);
        out.finish(b, p.at_text_start);
      });
    }
    if (split_) split_->apply(pieces, scratch);
    for_each_piece(pieces, scratch, [](const PieceList& in, const Piece& p, PieceList& out) {
      uint32_t b = out.open();
      byte_level::encode(in.view(p), out.text);
      out.finish(b, p.at_text_start);
    });
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<RegexSplit> split_;
};

enum class PrependScheme { Always, First, Never };

class Metaspace final : public PreTokenizer {
 public:
  Metaspace(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {
    size_t i = 0;
    replacement_char_ = utf8::next(replacement_, i);
  }
  void apply(PieceList& pieces, PieceList& scratch) const override {
    for_each_piece(pieces, scratch, [&](const PieceList& in, const Piece& p, PieceList& out) {
      std::string_view t = in.view(p);
      uint32_t b = out.open();
      bool starts_with_replacement = t.front() == ' ' || t.starts_with(replacement_);
      bool prepend = !starts_with_replacement &&
                     (scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && p.at_text_start));
      if (prepend) out.text += replacement_;
      for (char c : t) {
        if (c == ' ')
          out.text += replacement_;
        else
          out.text.push_back(c);
      }
      out.finish(b, p.at_text_start);
    });
    if (!split_) return;
    thread_local std::vector<std::pair<size_t, size_t>> matches;
    thread_local Sections sections;
    for_each_piece(pieces, scratch, [&](const PieceList& in, const Piece& p, PieceList& out) {
      char_matches(in.view(p), [&](char32_t c) { return c == replacement_char_; }, matches);
      cover(in.view(p), matches, false, sections);
      emit(in, p, sections, SplitBehavior::MergedWithNext, out);
    });
  }

 private:
  std::string replacement_;
  char32_t replacement_char_;
  PrependScheme scheme_;
  bool split_;
};

class Sequence final : public PreTokenizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void apply(PieceList& pieces, PieceList& scratch) const override {
    for (const auto& s : steps_) s->apply(pieces, scratch);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

SplitBehavior behavior_of(const std::string& name, const std::string& where) {
  if (name == "Removed") return SplitBehavior::Removed;
  if (name == "Isolated") return SplitBehavior::Isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (name == "Contiguous") return SplitBehavior::Contiguous;
  fail("{}: unknown split behavior '{}'", where, name);
}

PrependScheme prepend_scheme_of(const json& spec, const std::string& where) {
  auto it = spec.find("prepend_scheme");
  if (it == spec.end() || it->is_null())  // older files: add_prefix_space
    return field_or(spec, "add_prefix_space", true, where) ? PrependScheme::Always : PrependScheme::Never;
  std::string s = it->get<std::string>();
  if (s == "always") return PrependScheme::Always;
  if (s == "first") return PrependScheme::First;
  if (s == "never") return PrependScheme::Never;
  fail("{}: unknown prepend_scheme '{}'", where, s);
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& spec) {
  if (spec.is_null()) return nullptr;
  const std::string type = type_of(spec, "pre_tokenizer");
  const std::string where = "pre_tokenizer " + type;
  if (type == "Split")
    return std::make_unique<RegexSplit>(pattern_of(spec, where),
                                        behavior_of(field<std::string>(spec, "behavior", where), where),
                                        field_or(spec, "invert", false, where));
  if (type == "ByteLevel")
    return std::make_unique<ByteLevel>(field_or(spec, "add_prefix_space", true, where),
                                       field_or(spec, "use_regex", true, where));
  if (type == "Metaspace") {
    std::string replacement = field_or<std::string>(spec, "replacement", "", where);
    if (replacement.empty()) replacement = field_or<std::string>(spec, "str_rep", "\xE2\x96\x81", where);
    return std::make_unique<Metaspace>(replacement, prepend_scheme_of(spec, where),
                                       field_or(spec, "split", true, where));
  }
  if (type == "Digits")
    return std::make_unique<CharSplit>(unicode::is_numeric, field_or(spec, "individual_digits", false, where)
                                                                 ? SplitBehavior::Isolated
                                                                 : SplitBehavior::Contiguous);
  if (type == "Punctuation")
    return std::make_unique<CharSplit>(unicode::is_punctuation,
                                       behavior_of(field_or<std::string>(spec, "behavior", "Isolated", where), where));
  if (type == "WhitespaceSplit") return std::make_unique<CharSplit>(unicode::is_whitespace, SplitBehavior::Removed);
  if (type == "Whitespace")
    return std::make_unique<RegexSplit>(PatternSpec{R"(\w+|[^\w\s]+)", false}, SplitBehavior::Removed, true);
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const auto& s : list_field(spec, "pretokenizers", where)) {
      auto p = make_pre_tokenizer(s);
      if (p) steps.push_back(std::move(p));
    }
    return std::make_unique<Sequence>(std::move(steps));
  }
  fail("unsupported pre_tokenizer type '{}' (supported: Split, ByteLevel, Metaspace, Digits, Punctuation, "
       "Whitespace, WhitespaceSplit, Sequence)", type);
}

}  // namespace duet::tok
