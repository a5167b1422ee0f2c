// read_tokenizer_config: special tokens as strings or AddedToken objects, the
// chat template as a string, a named list, or chat_template.jinja.
#include <gtest/gtest.h>

#include "data/template_choice.hpp"
#include "data/tokenizer_config.hpp"
#include "helpers.hpp"
#include "util/error.hpp"

namespace duet::data {
namespace {

using testing::TempDir;
using testing::write_file;

TEST(TokenizerConfig, ReadsTokensAndTemplateNextToTokenizerJson) {
  TempDir dir;
  write_file(dir / "tokenizer_config.json",
             R"({"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>", "pad_token": null,
                 "chat_template": "{{ '[INST] ' + m + ' [/INST]' }}<<SYS>>"})");
  // A tokenizer.json path and its folder give the same config.
  for (const auto& path : {dir.path(), dir / "tokenizer.json"}) {
    const TokenizerConfig c = read_tokenizer_config(path);
    EXPECT_EQ(c.bos_token, "<s>");
    EXPECT_EQ(c.eos_token, "</s>");
    ASSERT_TRUE(c.chat_template);
    EXPECT_NE(c.chat_template->find("<<SYS>>"), std::string::npos);
  }
  const TokenizerConfig c = read_tokenizer_config(dir.path());
  const TemplateChoice choice = choose_template("auto", &c);
  ASSERT_TRUE(choice.chat_template);
  EXPECT_EQ(choice.chat_template->name, "llama2");
  EXPECT_FALSE(choice.apply_to_text);
  EXPECT_NE(choice.description.find("tokenizer_config.json"), std::string::npos) << choice.description;
}

TEST(TokenizerConfig, NamedTemplateListAndJinjaFile) {
  TempDir dir;
  write_file(dir / "tokenizer_config.json",
             R"({"chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": "<|im_start|><|im_end|>"}]})");
  EXPECT_EQ(read_tokenizer_config(dir.path()).chat_template, "<|im_start|><|im_end|>");
  write_file(dir / "chat_template.jinja", "<|start_header_id|><|eot_id|>");
  const TokenizerConfig c = read_tokenizer_config(dir.path());
  EXPECT_EQ(c.chat_template, "<|start_header_id|><|eot_id|>");
  EXPECT_NE(c.chat_template_origin.find("chat_template.jinja"), std::string::npos);
}

TEST(TokenizerConfig, MissingFilesGiveNothingAndBadOnesFail) {
  TempDir dir;
  const TokenizerConfig none = read_tokenizer_config(dir.path());
  EXPECT_FALSE(none.bos_token || none.eos_token || none.chat_template);
  const TemplateChoice choice = choose_template("auto", &none);
  EXPECT_FALSE(choice.chat_template);
  EXPECT_NE(choice.description.find("none"), std::string::npos);
  write_file(dir / "tokenizer_config.json", "{not json");
  EXPECT_THROW(read_tokenizer_config(dir.path()), Error);
  write_file(dir / "tokenizer_config.json", R"({"eos_token": 5})");
  EXPECT_THROW(read_tokenizer_config(dir.path()), Error);
  write_file(dir / "tokenizer_config.json", R"({"chat_template": [{"name": "tool_use", "template": "x"}]})");
  EXPECT_THROW(read_tokenizer_config(dir.path()), Error);
}

TEST(TokenizerConfig, NamedTemplateTakesTheTokenizersSpecialTokens) {
  TokenizerConfig c;
  c.bos_token = "<BOS>";
  c.eos_token = "<EOS>";
  const TemplateChoice m = choose_template("mistral", &c);
  ASSERT_TRUE(m.chat_template);
  EXPECT_EQ(m.chat_template->bos_token, "<BOS>");
  EXPECT_EQ(m.chat_template->eos_token, "<EOS>");
  EXPECT_TRUE(m.apply_to_text);
  EXPECT_THROW(choose_template("nonsense", &c), Error);
  EXPECT_FALSE(choose_template("none", &c).chat_template);
}

}  // namespace
}  // namespace duet::data
