// The pipeline with real tokenizers: results independent of threads and block
// sizes, pack limits and vocabulary checks reported per example, the demo
// datasets read cleanly.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "assets.hpp"
#include "data/prepare.hpp"
#include "helpers.hpp"
#include "util/error.hpp"

namespace duet::data {
namespace {

using nlohmann::json;
using testing::fresh_seed;
using testing::random_text;
using testing::seed_trace;
using testing::TempDir;
using testing::uniform;
using testing::write_file;

const TokenizerBundle& bundle(const std::string& family) {
  static std::map<std::string, TokenizerBundle> cache;
  auto it = cache.find(family);
  if (it == cache.end()) it = cache.emplace(family, load_tokenizer_bundle(testing::tokenizer_dir(family))).first;
  return it->second;
}

std::string random_line(std::mt19937_64& rng) {
  const std::string a = random_text(rng, 40), b = random_text(rng, 40) + "!";
  if (uniform(rng, 0, 1)) return json{{"prompt", random_text(rng, 60)}, {"chosen", a}, {"rejected", b}}.dump();
  json prompt = json::array();
  if (uniform(rng, 0, 1)) prompt.push_back({{"role", "system"}, {"content", random_text(rng, 20)}});
  prompt.push_back({{"role", "user"}, {"content", random_text(rng, 60)}});
  return json{{"prompt", prompt},
              {"chosen", json::array({{{"role", "assistant"}, {"content", a}}})},
              {"rejected", json::array({{{"role", "assistant"}, {"content", b}}})}}
      .dump();
}

TEST(RealTokenizers, ThreadsAndBlocksDoNotChangeTheResult) {
  for (const std::string family : {"llama3", "qwen3"}) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(family + " " + seed_trace(seed));
    std::mt19937_64 rng(seed);
    std::string text;
    for (int i = 0; i < 300; ++i) text += random_line(rng) + "\n";
    TempDir dir;
    write_file(dir / "d.jsonl", text);
    PrepareOptions serial;
    serial.threads = 1;
    serial.block_lines = 1000;
    PrepareOptions parallel;
    parallel.threads = 4;
    parallel.block_lines = static_cast<size_t>(uniform(rng, 1, 40));
    const PreparedDataset a = prepare_dataset(dir / "d.jsonl", serial, &bundle(family), OnError::fail);
    const PreparedDataset b = prepare_dataset(dir / "d.jsonl", parallel, &bundle(family), OnError::fail);
    ASSERT_EQ(a.examples.size(), 300u);
    ASSERT_EQ(b.examples.size(), a.examples.size());
    for (size_t i = 0; i < a.examples.size(); ++i) {
      EXPECT_EQ(a.examples[i].prompt, b.examples[i].prompt);
      EXPECT_EQ(a.examples[i].responses, b.examples[i].responses);
    }
  }
}

TEST(RealTokenizers, ExamplesLongerThanPackTokensAreProblems) {
  TempDir dir;
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "word ";
  write_file(dir / "d.jsonl", json{{"prompt", "short"}, {"chosen", "a"}, {"rejected", "b"}}.dump() + "\n" +
                                  json{{"prompt", long_text}, {"chosen", "a"}, {"rejected", "b"}}.dump() + "\n");
  PrepareOptions o;
  o.pack_tokens = 64;
  const PreparedDataset d = prepare_dataset(dir / "d.jsonl", o, &bundle("llama3"), OnError::skip);
  EXPECT_EQ(d.examples.size(), 1u);
  ASSERT_EQ(d.report.problems.size(), 1u);
  EXPECT_EQ(d.report.problems[0].line, 2);
  EXPECT_EQ(d.report.problems[0].kind, problem::too_long);
  EXPECT_NE(d.report.problems[0].message.find("--pack-tokens"), std::string::npos);
  // Truncating to fit removes the problem.
  o.truncation = {32, 16};
  EXPECT_EQ(prepare_dataset(dir / "d.jsonl", o, &bundle("llama3"), OnError::fail).examples.size(), 2u);
}

TEST(RealTokenizers, PreTokenizedIdsMustBeInTheVocabulary) {
  TempDir dir;
  const size_t vocab = bundle("mistral").tokenizer.vocab_size();
  write_file(dir / "d.jsonl", json{{"prompt_input_ids", {1, 2}}, {"chosen_input_ids", {3}}, {"rejected_input_ids", {vocab}}}.dump() + "\n");
  const PreparedDataset d = prepare_dataset(dir / "d.jsonl", {}, &bundle("mistral"), OnError::skip);
  ASSERT_EQ(d.report.problems.size(), 1u);
  EXPECT_EQ(d.report.problems[0].kind, problem::token_id);
  EXPECT_EQ(d.report.problems[0].field, "rejected_input_ids[0]");
}

TEST(RealTokenizers, ConversationsNeedATemplateTheTokenizerLacks) {
  // The Mistral tokenizer_config.json has no chat_template.
  TempDir dir;
  write_file(dir / "d.jsonl",
             R"({"prompt": [{"role":"user","content":"q"}], "chosen": [{"role":"assistant","content":"a"}], "rejected": [{"role":"assistant","content":"b"}]})"
             "\n");
  try {
    prepare_dataset(dir / "d.jsonl", {}, &bundle("mistral"), OnError::fail);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--chat-template"), std::string::npos) << e.what();
  }
  PrepareOptions named;
  named.chat_template = "mistral";
  const PreparedDataset d = prepare_dataset(dir / "d.jsonl", named, &bundle("mistral"), OnError::fail);
  ASSERT_EQ(d.examples.size(), 1u);
  EXPECT_EQ(d.examples[0].prompt.front(), 1u);          // <s>
  EXPECT_EQ(d.examples[0].responses[0].back(), 2u);     // </s>
}

TEST(RealTokenizers, DemoDatasetsReadCleanly) {
  for (const std::string file : {"data/demo/wordnet_define.jsonl", "data/demo/wordnet_chat.jsonl"}) {
    SCOPED_TRACE(file);
    for (const std::string family : {"llama3", "qwen3"}) {
      const PreparedDataset d = prepare_dataset(testing::source_dir() / file, {}, &bundle(family), OnError::fail);
      EXPECT_GE(d.examples.size(), 1000u);
      EXPECT_EQ(d.report.dropped_total(), 0);
    }
  }
}

}  // namespace
}  // namespace duet::data
