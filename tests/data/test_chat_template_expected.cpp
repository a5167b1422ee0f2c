// duet's chat templates + tokenization against what Hugging Face gives
// (tests/data/chat_template_expected.json, written on the GPU machine by
// scripts/record_chat_template_ids.py): for every case the template is
// recognised from its Jinja source, the prompt and response texts match
// apply_chat_template as TRL splits them, and the ids match tokenizer.json.
#include <gtest/gtest.h>

#include <map>

#include <nlohmann/json.hpp>

#include "assets.hpp"
#include "data/parse_example.hpp"
#include "data/prepare.hpp"
#include "data/render_example.hpp"
#include "helpers.hpp"

namespace duet::data {
namespace {

using nlohmann::json;

const std::filesystem::path kExpected = testing::source_dir() / "tests/data/chat_template_expected.json";

json load_expected() {
  if (!std::filesystem::exists(kExpected)) return nullptr;
  return json::parse(testing::read_file(kExpected));
}

// The example as a dataset line: chosen/rejected, or a ranked list.
std::string dataset_line(const json& c) {
  json line = {{"prompt", c["prompt"]}};
  const json& responses = c["responses"];
  if (responses.size() == 2) {
    line["chosen"] = responses[0];
    line["rejected"] = responses[1];
  } else {
    line["responses"] = responses;
  }
  return line.dump();
}

TEST(ChatTemplateExpected, TheRecordedFileExists) {
  ASSERT_TRUE(std::filesystem::exists(kExpected))
      << kExpected << " is missing: run `python3 scripts/record_chat_template_ids.py --assets "
      << DUET_ASSETS_DIR << "` where transformers is installed (the GPU machine) and commit its output";
}

TEST(ChatTemplateExpected, TextsAndIdsMatchHuggingFace) {
  const json expected = load_expected();
  ASSERT_FALSE(expected.is_null()) << kExpected << " is missing (see TheRecordedFileExists)";
  ASSERT_GE(expected["cases"].size(), 40u);
  std::map<std::string, TokenizerBundle> bundles;
  std::vector<std::string> auto_tokenizer_differs;
  testing::TempDir dir;
  for (const json& c : expected["cases"]) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    const std::string family = c["tokenizer"];
    if (!bundles.count(family)) bundles.emplace(family, load_tokenizer_bundle(testing::tokenizer_dir(family)));
    TokenizerBundle& bundle = bundles.at(family);
    const bool templated = !c["template_name"].is_null();
    if (templated) bundle.config.chat_template = c["chat_template"].get<std::string>();

    // Recognition.
    PrepareOptions options;
    options.chat_template = templated ? "auto" : "none";
    const TemplateChoice choice = choose_template(options.chat_template, &bundle.config);
    if (templated) {
      ASSERT_TRUE(choice.chat_template) << choice.description;
      EXPECT_EQ(choice.chat_template->name, c["template_name"].get<std::string>()) << choice.description;
    }

    // Texts.
    const std::string line = dataset_line(c);
    ParsedLine parsed = parse_example_line(line, 1, {});
    ASSERT_TRUE(parsed.example) << parsed.problems[0].message;
    std::vector<Problem> problems;
    ProblemSink sink(1, problems);
    auto rendered = render_example(*parsed.example, choice, "case", sink);
    ASSERT_TRUE(rendered) << problems[0].message;
    const json& e = c["expected"];
    EXPECT_EQ(rendered->prompt, e["prompt_text"].get<std::string>());
    EXPECT_EQ(rendered->responses, e["response_texts"].get<std::vector<std::string>>());

    // Ids, through the whole pipeline.
    testing::write_file(dir / "case.jsonl", line + "\n");
    PreparedDataset d = prepare_dataset(dir / "case.jsonl", options, &bundle, OnError::fail);
    ASSERT_EQ(d.examples.size(), 1u);
    const auto want_prompt = e["tokenizers_prompt_ids"].get<std::vector<uint32_t>>();
    const auto want_responses = e["tokenizers_response_ids"].get<std::vector<std::vector<uint32_t>>>();
    EXPECT_EQ(d.examples[0].prompt, want_prompt);
    EXPECT_EQ(d.examples[0].responses, want_responses);
    if (!c["tokenizers_agree"].get<bool>()) {
      auto_tokenizer_differs.push_back(name);
    } else {
      EXPECT_EQ(d.examples[0].prompt, e["prompt_ids"].get<std::vector<uint32_t>>());
      EXPECT_EQ(d.examples[0].responses, e["response_ids"].get<std::vector<std::vector<uint32_t>>>());
    }
  }
  // Known: transformers 5 rebuilds LlamaTokenizer without tokenizer.json's
  // Prepend normalizer, so texts starting with a space differ (docs/data.md).
  for (const auto& name : auto_tokenizer_differs)
    EXPECT_TRUE(name.starts_with("llama2/") || name.starts_with("mistral/"))
        << name << ": AutoTokenizer and tokenizer.json disagree outside the known Llama 2 / Mistral case";
  if (!auto_tokenizer_differs.empty())
    std::printf("note: %zu case(s) where transformers' AutoTokenizer differs from tokenizer.json (compared with "
                "tokenizer.json): leading-space texts with the Llama 2 / Mistral tokenizers\n",
                auto_tokenizer_differs.size());
}

}  // namespace
}  // namespace duet::data
