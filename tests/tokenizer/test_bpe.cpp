// The BPE merge loop against a slow, obviously-correct reference on random
// vocabularies, plus each option (byte fallback, unk fusing, ignore_merges,
// continuing-subword prefix).
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "test_helpers.hpp"
#include "tokenizer/bpe.hpp"
#include "util/error.hpp"

namespace duet::tok {
namespace {

using Merges = std::vector<std::pair<std::string, std::string>>;

// Reference: repeatedly merge the adjacent pair of lowest rank (leftmost on
// ties), one occurrence at a time, until no adjacent pair has a merge.
std::vector<std::string> reference_bpe(const std::string& word, const Merges& merges) {
  std::map<std::pair<std::string, std::string>, size_t> rank;
  for (size_t r = 0; r < merges.size(); ++r) rank[merges[r]] = r;  // later duplicates win, as in HF
  std::vector<std::string> symbols;
  for (char c : word) symbols.emplace_back(1, c);
  for (;;) {
    size_t best = SIZE_MAX, at = 0;
    for (size_t k = 0; k + 1 < symbols.size(); ++k) {
      auto it = rank.find({symbols[k], symbols[k + 1]});
      if (it != rank.end() && it->second < best) best = it->second, at = k;
    }
    if (best == SIZE_MAX) return symbols;
    symbols[at] += symbols[at + 1];
    symbols.erase(symbols.begin() + static_cast<ptrdiff_t>(at) + 1);
  }
}

struct RandomBpe {
  std::unordered_map<std::string, TokenId> vocab;
  Merges merges;
};

RandomBpe random_bpe(std::mt19937& rng, const std::string& alphabet, int n_merges) {
  RandomBpe r;
  std::vector<std::string> tokens;
  for (char c : alphabet) {
    tokens.emplace_back(1, c);
    r.vocab.emplace(tokens.back(), static_cast<TokenId>(r.vocab.size()));
  }
  for (int m = 0; m < n_merges; ++m) {
    const std::string& a = tokens[rng() % tokens.size()];
    const std::string& b = tokens[rng() % tokens.size()];
    std::string merged = a + b;
    if (merged.size() > 8) continue;
    r.merges.emplace_back(a, b);  // may repeat a pair or reach a string twice: both allowed by HF
    if (r.vocab.emplace(merged, static_cast<TokenId>(r.vocab.size())).second) tokens.push_back(merged);
  }
  return r;
}

std::vector<std::string> encode_tokens(const Bpe& bpe, const std::string& word) {
  std::vector<TokenId> ids;
  bpe.encode_word(word, ids);
  std::vector<std::string> out;
  for (TokenId id : ids) out.push_back(*bpe.id_to_token(id));
  return out;
}

TEST(Bpe, MergeLoopEqualsReferenceOnRandomVocabularies) {
  unsigned seed = testing::fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (int v = 0; v < 30; ++v) {
    RandomBpe r = random_bpe(rng, "abcd", 10 + v * 5);
    Bpe bpe(r.vocab, r.merges, {});
    for (int w = 0; w < 200; ++w) {
      std::string word;
      int len = std::uniform_int_distribution<int>(1, 40)(rng);
      for (int k = 0; k < len; ++k) word.push_back("abcd"[rng() % 4]);
      ASSERT_EQ(encode_tokens(bpe, word), reference_bpe(word, r.merges)) << "word " << word;
    }
  }
}

TEST(Bpe, LongWordMatchesReference) {
  // A long word exercises the heap with many stale entries.
  std::mt19937 rng(testing::fresh_seed());
  RandomBpe r = random_bpe(rng, "ab", 40);
  Bpe bpe(r.vocab, r.merges, {});
  std::string word;
  for (int k = 0; k < 3000; ++k) word.push_back("ab"[rng() % 2]);
  EXPECT_EQ(encode_tokens(bpe, word), reference_bpe(word, r.merges));
}

std::unordered_map<std::string, TokenId> byte_vocab() {
  std::unordered_map<std::string, TokenId> v{{"<unk>", 0}, {"a", 1}, {"b", 2}, {"ab", 3}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    v.emplace(name, static_cast<TokenId>(4 + b));
  }
  return v;
}

TEST(Bpe, ByteFallbackSpellsUnknownCharactersAsBytes) {
  BpeOptions o;
  o.byte_fallback = true;
  o.unk_token = "<unk>";
  Bpe bpe(byte_vocab(), {{"a", "b"}}, o);
  // 🦙 is F0 9F A6 99.
  EXPECT_EQ(encode_tokens(bpe, "ab🦙a"), (std::vector<std::string>{"ab", "<0xF0>", "<0x9F>", "<0xA6>", "<0x99>", "a"}));
}

TEST(Bpe, UnknownCharactersFuseOnlyWhenAsked) {
  std::unordered_map<std::string, TokenId> vocab{{"<unk>", 0}, {"a", 1}};
  BpeOptions o;
  o.unk_token = "<unk>";
  EXPECT_EQ(encode_tokens(Bpe(vocab, {}, o), "axya"), (std::vector<std::string>{"a", "<unk>", "<unk>", "a"}));
  o.fuse_unk = true;
  EXPECT_EQ(encode_tokens(Bpe(vocab, {}, o), "axya"), (std::vector<std::string>{"a", "<unk>", "a"}));
  // Without an unk token HF drops unknown characters.
  EXPECT_EQ(encode_tokens(Bpe(vocab, {}, {}), "axa"), (std::vector<std::string>{"a", "a"}));
}

TEST(Bpe, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  // Merges alone would give [ab, c]; the word "abc" is itself a token.
  std::unordered_map<std::string, TokenId> vocab{{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}, {"abc", 5}};
  Merges merges{{"a", "b"}, {"b", "c"}};
  EXPECT_EQ(encode_tokens(Bpe(vocab, merges, {}), "abc"), (std::vector<std::string>{"ab", "c"}));
  BpeOptions o;
  o.ignore_merges = true;
  EXPECT_EQ(encode_tokens(Bpe(vocab, merges, o), "abc"), (std::vector<std::string>{"abc"}));
}

TEST(Bpe, ContinuingSubwordPrefix) {
  std::unordered_map<std::string, TokenId> vocab{{"a", 0}, {"##b", 1}, {"##c", 2}, {"ab", 3}, {"##bc", 4}};
  BpeOptions o;
  o.continuing_subword_prefix = "##";
  Bpe bpe(vocab, {{"##b", "##c"}}, o);
  EXPECT_EQ(encode_tokens(bpe, "abc"), (std::vector<std::string>{"a", "##bc"}));
}

TEST(Bpe, MergeOfUnknownTokenIsRejected) {
  std::unordered_map<std::string, TokenId> vocab{{"a", 0}, {"b", 1}};
  EXPECT_THROW(Bpe(vocab, {{"a", "b"}}, {}), Error);  // "ab" missing
  EXPECT_THROW(Bpe(vocab, {{"a", "q"}}, {}), Error);
  EXPECT_THROW(Bpe::from_json(nlohmann::json::parse(R"({"type":"BPE","vocab":{"a":0},"merges":["a b c"]})")), Error);
}

}  // namespace
}  // namespace duet::tok
