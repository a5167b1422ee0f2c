// Added tokens: leftmost-longest matching, lstrip/rstrip/single_word, and the
// split between raw and normalized matching — on a tiny byte-level tokenizer
// built in the test.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"

namespace duet::tok {
namespace {

// Byte-level tokenizer whose vocabulary is the 256 byte characters only, so
// every ordinary byte is one id (its byte value after the GPT-2 map).
Tokenizer tiny(const std::string& added_tokens, const std::string& normalizer = "null") {
  nlohmann::json vocab = nlohmann::json::object();
  // Map byte b to id b through the byte-level alphabet (printable ASCII maps to itself).
  for (int b = 0x21; b <= 0x7E; ++b) vocab[std::string(1, static_cast<char>(b))] = b;
  vocab["Ġ"] = 32;
  std::string text = R"({"model":{"type":"BPE","vocab":)" + vocab.dump() +
                     R"(,"merges":[]},"normalizer":)" + normalizer +
                     R"(,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":false},
                        "decoder":{"type":"ByteLevel"},"added_tokens":)" + added_tokens + "}";
  return Tokenizer::from_json_text(text, "tiny");
}

TEST(AddedTokens, LeftmostLongestMatchInRawText) {
  auto t = tiny(R"([{"id":300,"content":"<a>","special":true},{"id":301,"content":"<a>b","special":true}])");
  EXPECT_EQ(t.encode("x<a>by<a>"), (Ids{'x', 301, 'y', 300}));
}

TEST(AddedTokens, LstripAndRstripSwallowWhitespace) {
  auto t = tiny(R"([{"id":300,"content":"<m>","lstrip":true,"rstrip":true,"special":true}])");
  EXPECT_EQ(t.encode("a  <m>  b"), (Ids{'a', 300, 'b'}));
  auto plain = tiny(R"([{"id":300,"content":"<m>","special":true}])");
  EXPECT_EQ(plain.encode("a <m> b"), (Ids{'a', 32, 300, 32, 'b'}));
}

TEST(AddedTokens, SingleWordRequiresWordBoundaries) {
  auto t = tiny(R"([{"id":300,"content":"ab","single_word":true,"special":false,"normalized":false}])");
  EXPECT_EQ(t.encode("ab"), (Ids{300}));
  EXPECT_EQ(t.encode("x ab."), (Ids{'x', 32, 300, '.'}));
  EXPECT_EQ(t.encode("xab"), (Ids{'x', 'a', 'b'}));
}

TEST(AddedTokens, NormalizedTokensMatchAfterNormalization) {
  // Lowercase normalizer: a normalized token matches any case; a raw one does not.
  auto t = tiny(R"([{"id":300,"content":"hi","normalized":true},{"id":301,"content":"YO","normalized":false}])",
                R"({"type":"Lowercase"})");
  EXPECT_EQ(t.encode("HI yo YO"), (Ids{300, 32, 'y', 'o', 32, 301}));
}

TEST(AddedTokens, DecodeSkipsOnlySpecialTokensWhenAsked) {
  auto t = tiny(R"([{"id":300,"content":"<s>","special":true},{"id":301,"content":"<x>","special":false}])");
  Ids ids{300, 'h', 'i', 301};
  EXPECT_EQ(t.decode(ids, false), "<s>hi<x>");
  EXPECT_EQ(t.decode(ids, true), "hi<x>");
  EXPECT_THROW(t.decode(Ids{999}, false), Error);
}

TEST(AddedTokens, InvalidUtf8TextIsRejected) {
  auto t = tiny("[]");
  EXPECT_THROW(t.encode("ok\xFF"), Error);
  EXPECT_EQ(t.encode(""), Ids{});
}

}  // namespace
}  // namespace duet::tok
