// Each normalizer on inputs whose expected output follows from the Unicode
// standard or the HF definition, not from running duet.
#include <gtest/gtest.h>

#include "tokenizer/normalizer.hpp"
#include "util/error.hpp"

namespace duet::tok {
namespace {

std::string normalize(const std::string& spec, std::string text) {
  auto n = make_normalizer(nlohmann::json::parse(spec));
  n->normalize(text);
  return text;
}

TEST(Normalizers, NfcComposesCombiningMarks) {
  EXPECT_EQ(normalize(R"({"type":"NFC"})", "e\u0301te\u0301"), "\u00e9t\u00e9");
  EXPECT_EQ(normalize(R"({"type":"NFC"})", "\u1100\u1161"), "\uac00");  // Hangul jamo -> syllable
  EXPECT_EQ(normalize(R"({"type":"NFC"})", "plain ascii"), "plain ascii");
  // A singleton decomposition: the Ohm sign becomes Omega under NFC.
  EXPECT_EQ(normalize(R"({"type":"NFC"})", "\u2126"), "\u03a9");
}

TEST(Normalizers, NfdAndCompatibilityForms) {
  EXPECT_EQ(normalize(R"({"type":"NFD"})", "\u00e9"), "e\u0301");
  EXPECT_EQ(normalize(R"({"type":"NFKC"})", "\ufb01"), "fi");      // ligature
  EXPECT_EQ(normalize(R"({"type":"NFKD"})", "\u00bd"), "1\u20442");  // vulgar fraction
}

TEST(Normalizers, PrependOnlyToNonEmptyText) {
  EXPECT_EQ(normalize(R"({"type":"Prepend","prepend":"▁"})", "hi"), "▁hi");
  EXPECT_EQ(normalize(R"({"type":"Prepend","prepend":"▁"})", ""), "");
}

TEST(Normalizers, ReplaceStringAndRegex) {
  EXPECT_EQ(normalize(R"({"type":"Replace","pattern":{"String":" "},"content":"▁"})", " a  b "), "▁a▁▁b▁");
  // A String pattern is literal: regex metacharacters match themselves.
  EXPECT_EQ(normalize(R"({"type":"Replace","pattern":{"String":"a.c"},"content":"X"})", "abc a.c"), "abc X");
  EXPECT_EQ(normalize(R"({"type":"Replace","pattern":{"Regex":"\\s+"},"content":" "})", "a \t\n b"), "a b");
}

TEST(Normalizers, LowercaseStripAndAccents) {
  EXPECT_EQ(normalize(R"({"type":"Lowercase"})", "HeLLo ÀÉÎ Σ"), "hello àéî σ");
  EXPECT_EQ(normalize(R"({"type":"Lowercase"})", "\u0130"), "i\u0307");  // as Rust's to_lowercase
  EXPECT_EQ(normalize(R"({"type":"Strip","strip_left":true,"strip_right":false})", " \t x \u3000"), "x \u3000");
  EXPECT_EQ(normalize(R"({"type":"Strip","strip_left":true,"strip_right":true})", "\u00a0 x \u3000"), "x");
  EXPECT_EQ(normalize(R"({"type":"StripAccents"})", "e\u0301a\u0300"), "ea");
}

TEST(Normalizers, SequenceAppliesInOrder) {
  // Prepend then Replace: the prepended marker is not a space, so it stays single.
  EXPECT_EQ(normalize(R"({"type":"Sequence","normalizers":[
      {"type":"Prepend","prepend":"▁"},
      {"type":"Replace","pattern":{"String":" "},"content":"▁"}]})", "a b"), "▁a▁b");
  // Replace then Prepend gives the same here, but NFD then NFC round-trips.
  EXPECT_EQ(normalize(R"({"type":"Sequence","normalizers":[{"type":"NFD"},{"type":"NFC"}]})", "\u00e9"), "\u00e9");
}

TEST(Normalizers, UnsupportedTypeIsNamed) {
  try {
    make_normalizer(nlohmann::json::parse(R"({"type":"Precompiled","precompiled_charsmap":""})"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Precompiled"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_normalizer(nlohmann::json::parse(R"({"type":"Prepend"})")), Error);
  EXPECT_EQ(make_normalizer(nlohmann::json()), nullptr);
}

}  // namespace
}  // namespace duet::tok
