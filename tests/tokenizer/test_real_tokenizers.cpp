// Properties of the real tokenizers (Llama 3, Qwen3, Llama 2/Mistral-style)
// on fresh random text: byte-level tokenizers are lossless, batch encoding on
// many threads equals one-by-one encoding, special tokens inside text are
// recognised, and a fused run of special tokens decodes back.
#include <gtest/gtest.h>

#include <utf8proc.h>

#include <cstdlib>
#include <map>
#include <random>

#include "assets.hpp"
#include "test_helpers.hpp"
#include "tokenizer/tokenizer.hpp"
#include "util/utf8.hpp"

namespace duet::tok {
namespace {

const Tokenizer& cached(const std::string& family) {
  static std::map<std::string, Tokenizer> loaded;
  auto it = loaded.find(family);
  if (it == loaded.end()) it = loaded.emplace(family, Tokenizer::load(testing::tokenizer_dir(family))).first;
  return it->second;
}

// Random text from a mix of scripts, emoji, whitespace runs and digits.
std::string random_text(std::mt19937& rng) {
  static const std::vector<std::string> atoms = {
      "the", " cat", "Hello", " ", "  ", "\t", "\n", "\r\n", "2024", "1234567", ",", "!?", "'s", "'LL", "é",
      "e\u0301", "中文", "日本語", "한국어", "🦙", "👨‍👩‍👧", "🇫🇷", "\u200b", "\u00a0", "ß", "Ω", "—", "<", "|", ">",
      "def f(x):\n    return x", "http://a.b/c?d=1", "ÄÖÜ", "ﬁ"};
  std::string s;
  int n = std::uniform_int_distribution<int>(0, 25)(rng);
  for (int k = 0; k < n; ++k) s += atoms[rng() % atoms.size()];
  // Sprinkle random code points too (valid scalar values only).
  int extra = std::uniform_int_distribution<int>(0, 3)(rng);
  for (int k = 0; k < extra; ++k) {
    char32_t cp = std::uniform_int_distribution<uint32_t>(0x20, 0x2FFFF)(rng);
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
    utf8::append(s, cp);
  }
  return s;
}

// NFC computed by utf8proc directly, independent of duet's normalizer.
std::string nfc(const std::string& s) {
  auto* out = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(s.c_str()));
  std::string r(reinterpret_cast<const char*>(out));
  std::free(out);
  return r;
}

TEST(RealTokenizers, ByteLevelTokenizersAreLossless) {
  // Llama 3 has no normalizer: decode(encode(x)) == x. Qwen normalizes to NFC
  // first, so it returns NFC(x).
  unsigned seed = testing::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (const char* family : {"llama3", "qwen3"}) {
    const Tokenizer& t = cached(family);
    const bool normalizes = std::string(family) == "qwen3";
    for (int trial = 0; trial < 300; ++trial) {
      std::string text = random_text(rng);
      Ids ids = t.encode(text, false);
      ASSERT_EQ(t.decode(ids, false), normalizes ? nfc(text) : text) << family;
      for (TokenId id : ids) ASSERT_LT(id, t.vocab_size());
    }
  }
}

TEST(RealTokenizers, BatchOnManyThreadsEqualsOneByOne) {
  std::mt19937 rng(testing::fresh_seed());
  std::vector<std::string> texts(500);
  for (auto& s : texts) s = random_text(rng);
  for (const char* family : {"llama3", "qwen3", "llama2"}) {
    const Tokenizer& t = cached(family);
    auto batch = t.encode_batch(texts, true, 4);
    ASSERT_EQ(batch.size(), texts.size());
    for (size_t i = 0; i < texts.size(); ++i) ASSERT_EQ(batch[i], t.encode(texts[i], true)) << family << " " << i;
  }
}

TEST(RealTokenizers, SpecialTokensInsideTextAreSingleIds) {
  const Tokenizer& llama3 = cached("llama3");
  auto eot = llama3.token_to_id("<|eot_id|>");
  ASSERT_TRUE(eot.has_value());
  Ids ids = llama3.encode("a<|eot_id|>b", false);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], *eot);
  EXPECT_TRUE(llama3.is_special(*eot));
  EXPECT_EQ(llama3.decode(ids, true), "ab");

  const Tokenizer& qwen = cached("qwen3");
  auto im_start = qwen.token_to_id("<|im_start|>");
  ASSERT_TRUE(im_start.has_value());
  EXPECT_EQ(qwen.encode("<|im_start|>user", false).front(), *im_start);
}

TEST(RealTokenizers, AddSpecialFollowsThePostProcessor) {
  // The Llama 2 style file has a TemplateProcessing that adds <s>; the byte-level
  // files here have a ByteLevel post-processor that adds nothing.
  const Tokenizer& l2 = cached("llama2");
  auto bos = l2.token_to_id("<s>");
  ASSERT_TRUE(bos.has_value());
  Ids plain = l2.encode("Hello", false), with = l2.encode("Hello", true);
  ASSERT_EQ(with.size(), plain.size() + 1);
  EXPECT_EQ(with.front(), *bos);
  EXPECT_EQ(Ids(with.begin() + 1, with.end()), plain);
  const Tokenizer& q = cached("qwen3");
  EXPECT_EQ(q.encode("Hello", true), q.encode("Hello", false));
}

}  // namespace
}  // namespace duet::tok
