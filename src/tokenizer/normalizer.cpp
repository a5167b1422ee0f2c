#include "tokenizer/normalizer.hpp"

#include <utf8proc.h>

#include <cstdlib>
#include <vector>

#include "tokenizer/json_fields.hpp"
#include "tokenizer/regex.hpp"
#include "tokenizer/unicode.hpp"
#include "util/utf8.hpp"

namespace duet::tok {

namespace {

bool is_ascii(const std::string& s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}

class UnicodeForm final : public Normalizer {
 public:
  UnicodeForm(int options, bool ascii_invariant) : options_(options), ascii_invariant_(ascii_invariant) {}
  void normalize(std::string& text) const override {
    if (ascii_invariant_ && is_ascii(text)) return;  // every form leaves ASCII unchanged
    utf8proc_uint8_t* out = nullptr;
    auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                          static_cast<utf8proc_ssize_t>(text.size()), &out,
                          static_cast<utf8proc_option_t>(options_));
    if (n < 0) fail("Unicode normalization failed: {}", utf8proc_errmsg(n));
    text.assign(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
    std::free(out);
  }

 private:
  int options_;
  bool ascii_invariant_;
};

class Lowercase final : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      char32_t c = utf8::next(text, i);
      if (c == 0x130) {  // İ: Rust's to_lowercase gives "i" + combining dot
        out += "i\xCC\x87";
        continue;
      }
      utf8::append(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
    }
    text.swap(out);
  }
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class Replace final : public Normalizer {
 public:
  Replace(const PatternSpec& pattern, std::string content)
      : regex_(pattern.text, pattern.literal), content_(std::move(content)) {}
  void normalize(std::string& text) const override { regex_.replace_all(text, content_); }

 private:
  Regex regex_;
  std::string content_;
};

class Strip final : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    size_t b = 0, e = text.size();
    if (left_)
      while (b < e) {
        size_t j = b;
        if (!unicode::is_whitespace(utf8::next(text, j))) break;
        b = j;
      }
    if (right_)
      while (e > b) {
        size_t s = utf8::previous_start(text, e), j = s;
        if (!unicode::is_whitespace(utf8::next(text, j))) break;
        e = s;
      }
    text = text.substr(b, e - b);
  }

 private:
  bool left_, right_;
};

class StripAccents final : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      char32_t c = utf8::next(text, i);
      if (!unicode::is_mark_nonspacing(c)) utf8::append(out, c);
    }
    text.swap(out);
  }
};

class Sequence final : public Normalizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  void normalize(std::string& text) const override {
    for (const auto& s : steps_) s->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const json& spec) {
  if (spec.is_null()) return nullptr;
  const std::string type = type_of(spec, "normalizer");
  const std::string where = "normalizer " + type;
  constexpr int kStable = UTF8PROC_STABLE;
  if (type == "NFC") return std::make_unique<UnicodeForm>(kStable | UTF8PROC_COMPOSE, true);
  if (type == "NFD") return std::make_unique<UnicodeForm>(kStable | UTF8PROC_DECOMPOSE, true);
  if (type == "NFKC") return std::make_unique<UnicodeForm>(kStable | UTF8PROC_COMPOSE | UTF8PROC_COMPAT, true);
  if (type == "NFKD") return std::make_unique<UnicodeForm>(kStable | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, true);
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "StripAccents") return std::make_unique<StripAccents>();
  if (type == "Prepend") return std::make_unique<Prepend>(field<std::string>(spec, "prepend", where));
  if (type == "Replace")
    return std::make_unique<Replace>(pattern_of(spec, where), field<std::string>(spec, "content", where));
  if (type == "Strip")
    return std::make_unique<Strip>(field_or(spec, "strip_left", true, where),
                                   field_or(spec, "strip_right", true, where));
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (const auto& s : list_field(spec, "normalizers", where)) {
      auto n = make_normalizer(s);
      if (n) steps.push_back(std::move(n));
    }
    return std::make_unique<Sequence>(std::move(steps));
  }
  fail("unsupported normalizer type '{}' (supported: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, "
       "Replace, Strip, StripAccents, Sequence)", type);
}

}  // namespace duet::tok
