// The test cases shipped inside llama3-tokenizer-js, llama-tokenizer-js and
// mistral-tokenizer-js (extracted by scripts/extract_npm_cases.mjs), run
// against the matching tokenizer.json. The JS packages add BOS/EOS by their
// own options; the cases record which, and we add the same ids around
// encode(text, add_special=false).
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "assets.hpp"
#include "tokenizer/tokenizer.hpp"

namespace duet::tok {
namespace {

class NpmCases : public ::testing::TestWithParam<std::string> {};

TEST_P(NpmCases, EncodeAndDecodeAsTheJsPackageExpects) {
  const std::string family = GetParam();
  std::ifstream in(testing::assets_dir() / "npm_cases" / (family + ".json"));
  ASSERT_TRUE(in) << "missing npm cases for " << family << " (run scripts/fetch_test_assets.sh)";
  const auto file = nlohmann::json::parse(in);
  const Tokenizer t = Tokenizer::load(testing::tokenizer_dir(file.at("tokenizer").get<std::string>()));
  const TokenId bos = file.at("bos_id"), eos = file.at("eos_id");
  const bool skip_special = file.at("decode_skip_special_tokens");
  int checked = 0;
  for (const auto& c : file.at("cases")) {
    if (!c.at("hf_compatible").get<bool>()) continue;  // JS-only special tokens (see docs/tokenizer-testing.md)
    const std::string text = c.at("text");
    SCOPED_TRACE(family + ": " + text.substr(0, 60));
    Ids ids;
    if (c.at("add_bos").get<bool>()) ids.push_back(bos);
    Ids body = t.encode(text, false);
    ids.insert(ids.end(), body.begin(), body.end());
    if (c.at("add_eos").get<bool>()) ids.push_back(eos);
    EXPECT_EQ(ids, c.at("ids").get<Ids>());
    if (c.at("decode").get<bool>()) EXPECT_EQ(t.decode(c.at("ids").get<Ids>(), skip_special), text);
    ++checked;
  }
  for (const auto& c : file.at("decode_only")) {
    if (!c.at("hf_compatible").get<bool>()) continue;
    for (bool skip : c.at("hf_skip_special_tokens").get<std::vector<bool>>()) {
      EXPECT_EQ(t.decode(c.at("ids").get<Ids>(), skip), c.at("text").get<std::string>());
      ++checked;
    }
  }
  EXPECT_GE(checked, 10) << "too few cases checked: the extraction probably broke";
}

INSTANTIATE_TEST_SUITE_P(Packages, NpmCases, ::testing::Values("llama3", "llama2", "mistral"));

}  // namespace
}  // namespace duet::tok
