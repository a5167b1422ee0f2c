#include <gtest/gtest.h>

#include <random>

#include "util/utf8.hpp"

namespace {

using duet::utf8::find_invalid;

TEST(Utf8, AcceptsValidSequencesOfEveryLength) {
  EXPECT_EQ(find_invalid(""), std::nullopt);
  EXPECT_EQ(find_invalid("plain ascii"), std::nullopt);
  EXPECT_EQ(find_invalid("caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\xA6\x99"), std::nullopt);
}

TEST(Utf8, RejectsMalformedSequencesAtTheirOffset) {
  EXPECT_EQ(find_invalid("ab\xFF"), 2u);                 // invalid lead byte
  EXPECT_EQ(find_invalid("a\xC3"), 1u);                  // truncated
  EXPECT_EQ(find_invalid("\xC0\xAF"), 0u);               // overlong '/'
  EXPECT_EQ(find_invalid("x\xE0\x80\xAF"), 1u);          // overlong 3-byte
  EXPECT_EQ(find_invalid("\xED\xA0\x80"), 0u);           // surrogate U+D800
  EXPECT_EQ(find_invalid("\xF4\x90\x80\x80"), 0u);       // above U+10FFFF
  EXPECT_EQ(find_invalid("ok\xE4\xB8"), 2u);             // cut mid-character
  EXPECT_EQ(find_invalid("\x80"), 0u);                   // lone continuation
}

TEST(Utf8, EncodeDecodeRoundTripsRandomCodePoints) {
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<uint32_t> dist(1, 0x10FFFF);
  std::vector<char32_t> cps;
  std::string s;
  while (cps.size() < 5000) {
    char32_t cp = dist(rng);
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    cps.push_back(cp);
    duet::utf8::append(s, cp);
  }
  ASSERT_EQ(find_invalid(s), std::nullopt);
  size_t i = 0;
  for (char32_t cp : cps) ASSERT_EQ(duet::utf8::next(s, i), cp);
  EXPECT_EQ(i, s.size());
  // Walking backwards finds the same boundaries.
  size_t end = s.size();
  for (size_t k = cps.size(); k-- > 0;) {
    size_t start = duet::utf8::previous_start(s, end);
    size_t j = start;
    ASSERT_EQ(duet::utf8::next(s, j), cps[k]);
    end = start;
  }
  EXPECT_EQ(end, 0u);
}

}  // namespace
