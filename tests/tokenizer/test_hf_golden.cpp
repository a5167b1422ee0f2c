// Exact parity with Hugging Face tokenizers on the 556-text corpus (real text
// plus hostile cases), for every tokenizer family, in all six modes: encode
// with and without special tokens, and decode of both with and without
// skip_special_tokens. The expected output was recorded from HF itself
// (scripts/record_hf_golden.py), so CI checks parity without HF installed.
#include <gtest/gtest.h>

#include <zlib.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "assets.hpp"
#include "tokenizer/tokenizer.hpp"

namespace duet::tok {
namespace {

std::vector<std::string> read_gz_lines(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return {};
  std::string all;
  char buf[1 << 16];
  for (int n; (n = gzread(f, buf, sizeof buf)) > 0;) all.append(buf, static_cast<size_t>(n));
  gzclose(f);
  std::vector<std::string> lines;
  for (size_t b = 0, e; b < all.size(); b = e + 1) {
    e = all.find('\n', b);
    if (e == std::string::npos) e = all.size();
    if (e > b) lines.push_back(all.substr(b, e - b));
  }
  return lines;
}

std::vector<std::string> corpus() {
  std::ifstream in(std::string(DUET_SOURCE_DIR) + "/tests/data/tokenizer_corpus.jsonl");
  std::vector<std::string> texts;
  for (std::string line; std::getline(in, line);) texts.push_back(nlohmann::json::parse(line).get<std::string>());
  return texts;
}

class HfGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(HfGolden, EncodeAndDecodeEqualHuggingFace) {
  const std::string family = GetParam();
  const auto texts = corpus();
  const auto golden = read_gz_lines(std::string(DUET_SOURCE_DIR) + "/tests/data/hf_golden/" + family + ".jsonl.gz");
  ASSERT_GE(texts.size(), 300u);
  ASSERT_EQ(golden.size(), texts.size()) << "golden file out of date: re-run scripts/record_hf_golden.py";
  const Tokenizer t = Tokenizer::load(testing::tokenizer_dir(family));
  const auto plain = t.encode_batch(texts, false, 0);
  const auto special = t.encode_batch(texts, true, 0);
  int mismatches = 0;
  for (size_t i = 0; i < texts.size() && mismatches < 5; ++i) {
    const auto g = nlohmann::json::parse(golden[i]);
    const Ids ids = g.at("ids"), ids_special = g.at("ids_special");
    const auto& dec = g.at("decode");
    SCOPED_TRACE(family + " line " + std::to_string(i + 1) + ": " + texts[i].substr(0, 60));
    bool ok = true;
    ok &= plain[i] == ids;
    EXPECT_EQ(plain[i], ids);
    ok &= special[i] == ids_special;
    EXPECT_EQ(special[i], ids_special);
    const std::string decoded[4] = {t.decode(ids, false), t.decode(ids, true), t.decode(ids_special, false),
                                    t.decode(ids_special, true)};
    for (int k = 0; k < 4; ++k) {
      ok &= decoded[k] == dec.at(k).get<std::string>();
      EXPECT_EQ(decoded[k], dec.at(k).get<std::string>()) << "decode mode " << k;
    }
    mismatches += !ok;
  }
}

INSTANTIATE_TEST_SUITE_P(Families, HfGolden, ::testing::Values("llama3", "qwen3", "llama2", "mistral"));

}  // namespace
}  // namespace duet::tok
