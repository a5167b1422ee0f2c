// Pre-tokenizers: split behaviors on the examples of HF's documentation,
// byte-level mapping, Metaspace schemes, Digits, and the Llama 3 regex.
#include <gtest/gtest.h>

#include "test_helpers.hpp"
#include "util/error.hpp"

namespace duet::tok {
namespace {

using testing::pre_tokenize;
using V = std::vector<std::string>;

std::string split_spec(const std::string& behavior, bool invert = false) {
  return R"({"type":"Split","pattern":{"String":"-"},"behavior":")" + behavior + R"(","invert":)" +
         (invert ? "true" : "false") + "}";
}

TEST(PreTokenizers, SplitBehaviorsMatchHfDocumentation) {
  const std::string text = "the-final--countdown";
  EXPECT_EQ(pre_tokenize(split_spec("Removed"), text), (V{"the", "final", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_spec("Isolated"), text), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_spec("MergedWithPrevious"), text), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_spec("MergedWithNext"), text), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(pre_tokenize(split_spec("Contiguous"), text), (V{"the", "-", "final", "--", "countdown"}));
}

TEST(PreTokenizers, SplitInvertKeepsMatchesAsContent) {
  // Inverted: the letters match; Removed drops what is *not* matched.
  EXPECT_EQ(pre_tokenize(R"({"type":"Split","pattern":{"Regex":"\\p{L}+"},"behavior":"Removed","invert":true})",
                         "ab, cd!"),
            (V{"ab", "cd"}));
}

TEST(PreTokenizers, SplitPiecesConcatenateBackToTheText) {
  // Isolated never loses or reorders bytes, whatever the text.
  const std::string llama3 =
      R"({"type":"Split","pattern":{"Regex":"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},"behavior":"Isolated","invert":false})";
  std::mt19937 rng(testing::fresh_seed());
  const std::vector<std::string> atoms = {"a", "Z", "é", "中", "🦙", " ", "  ", "\n", "\r\n", "\t", "1", "42",
                                          "'s", "'S", "!", "...", "ß", "\u0301"};
  for (int trial = 0; trial < 200; ++trial) {
    std::string text;
    int n = std::uniform_int_distribution<int>(1, 30)(rng);
    for (int k = 0; k < n; ++k) text += atoms[rng() % atoms.size()];
    std::string joined;
    for (const auto& p : pre_tokenize(llama3, text)) {
      EXPECT_FALSE(p.empty());
      joined += p;
    }
    EXPECT_EQ(joined, text);
  }
}

TEST(PreTokenizers, Llama3RegexSplitsLikeTiktoken) {
  const std::string llama3 =
      R"({"type":"Split","pattern":{"Regex":"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},"behavior":"Isolated","invert":false})";
  EXPECT_EQ(pre_tokenize(llama3, "I'LL pay 12345 dollars!!\n\n  ok"),
            (V{"I", "'LL", " pay", " ", "123", "45", " dollars", "!!\n\n", " ", " ok"}));
}

TEST(PreTokenizers, ByteLevelMapsBytesAndSplitsLikeGpt2) {
  EXPECT_EQ(pre_tokenize(R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":false})", "a b\n"),
            (V{"aĠbĊ"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"ByteLevel","add_prefix_space":true,"use_regex":true})", "Hello world's"),
            (V{"ĠHello", "Ġworld", "'s"}));
  // Non-ASCII bytes map to the printable stand-ins: é is C3 A9 -> "Ã©".
  EXPECT_EQ(pre_tokenize(R"({"type":"ByteLevel","add_prefix_space":false,"use_regex":false})", "é"), (V{"Ã©"}));
}

TEST(PreTokenizers, MetaspacePrependSchemes) {
  const std::string always = R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true})";
  EXPECT_EQ(pre_tokenize(always, "Hey friend"), (V{"▁Hey", "▁friend"}));
  EXPECT_EQ(pre_tokenize(always, " x"), (V{"▁x"}));
  const std::string never = R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"never","split":false})";
  EXPECT_EQ(pre_tokenize(never, "a b"), (V{"a▁b"}));
  const std::string first = R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false})";
  EXPECT_EQ(pre_tokenize(first, "ab"), (V{"▁ab"}));
  // A piece that is not at the start of the text gets no prefix under "first".
  PieceList pieces, scratch;
  pieces.add("ab", false);
  make_pre_tokenizer(nlohmann::json::parse(first))->apply(pieces, scratch);
  EXPECT_EQ(pieces.view(pieces.pieces.at(0)), "ab");
}

TEST(PreTokenizers, DigitsIndividualOrContiguous) {
  EXPECT_EQ(pre_tokenize(R"({"type":"Digits","individual_digits":true})", "a123b"), (V{"a", "1", "2", "3", "b"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"Digits","individual_digits":false})", "a123b45"), (V{"a", "123", "b", "45"}));
}

TEST(PreTokenizers, WhitespaceFamiliesAndSequence) {
  EXPECT_EQ(pre_tokenize(R"({"type":"WhitespaceSplit"})", " a  b\tc "), (V{"a", "b", "c"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"Whitespace"})", "Hey, you!"), (V{"Hey", ",", "you", "!"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},{"type":"Digits","individual_digits":true}]})",
                         "ab12 3"),
            (V{"ab", "1", "2", "3"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"Punctuation","behavior":"Isolated"})", "a,b"), (V{"a", ",", "b"}));
}

TEST(PreTokenizers, UnsupportedTypeIsNamed) {
  try {
    make_pre_tokenizer(nlohmann::json::parse(R"({"type":"BertPreTokenizer"})"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("BertPreTokenizer"), std::string::npos) << e.what();
  }
  EXPECT_THROW(pre_tokenize(R"({"type":"Split","pattern":{"Regex":"(unclosed"},"behavior":"Isolated"})", "x"), Error);
  EXPECT_THROW(pre_tokenize(R"({"type":"Split","pattern":{"String":"-"},"behavior":"Sideways"})", "x"), Error);
}

}  // namespace
}  // namespace duet::tok
