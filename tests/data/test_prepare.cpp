// prepare_stream / prepare_dataset on random files mixing good and bad lines
// (pre-tokenized, so no tokenizer is needed): every line accounted for, in
// file order, whatever the block size and thread count; --on-error; pack
// limits; text without a tokenizer.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "data/prepare.hpp"
#include "helpers.hpp"
#include "util/error.hpp"

namespace duet::data {
namespace {

using nlohmann::json;
using testing::fresh_seed;
using testing::seed_trace;
using testing::TempDir;
using testing::uniform;
using testing::write_file;

struct Expected {
  std::vector<layout::TokenizedExample> kept;  // index = kept order
  std::vector<int64_t> kept_lines;
  std::vector<std::pair<int64_t, std::string>> problems;  // line, kind
  int64_t read = 0;
  int64_t too_long_dropped = 0;
};

std::vector<uint32_t> ids(std::mt19937_64& rng, int64_t n) {
  std::vector<uint32_t> v(static_cast<size_t>(n));
  for (auto& id : v) id = static_cast<uint32_t>(uniform(rng, 0, 1000));
  return v;
}

// A random dataset; pack_tokens > 0 makes long examples problems.
std::string random_dataset(std::mt19937_64& rng, int64_t pack_tokens, Expected& e) {
  std::string text;
  int64_t line = 0;
  const int64_t n = uniform(rng, 0, 400);
  for (int64_t i = 0; i < n; ++i) {
    ++line;
    const int64_t kind = uniform(rng, 0, 9);
    if (kind == 0) {  // blank lines are not examples
      text += uniform(rng, 0, 1) ? "\n" : "  \t\n";
      continue;
    }
    ++e.read;
    if (kind == 1) {
      text += "{\"prompt_input_ids\": [1, 2\n";
      e.problems.push_back({line, std::string(problem::malformed_json)});
    } else if (kind == 2) {
      text += R"({"prompt_input_ids": [1], "chosen_input_ids": [5], "rejected_input_ids": [5]})" "\n";
      e.problems.push_back({line, std::string(problem::identical)});
    } else if (kind == 3) {
      text += R"({"prompt_input_ids": [1], "chosen_input_ids": []})" "\n";
      // Two problems on one line: the missing and the empty field.
      e.problems.push_back({line, std::string(problem::empty)});
      e.problems.push_back({line, std::string(problem::missing_field)});
    } else {
      layout::TokenizedExample ex;
      ex.prompt = ids(rng, uniform(rng, 1, 30));
      ex.responses = {ids(rng, uniform(rng, 1, 30)), ids(rng, uniform(rng, 1, 30))};
      ex.responses[1].push_back(7777);  // never identical to the chosen
      text += json{{"prompt_input_ids", ex.prompt}, {"chosen_input_ids", ex.responses[0]},
                   {"rejected_input_ids", ex.responses[1]}}
                  .dump() +
              "\n";
      if (pack_tokens > 0 && layout::unit_tokens(ex, layout::Layout::paired) > pack_tokens) {
        e.problems.push_back({line, std::string(problem::too_long)});
        continue;
      }
      ex.index = static_cast<int64_t>(e.kept.size());
      e.kept.push_back(ex);
      e.kept_lines.push_back(line);
    }
  }
  return text;
}

TEST(Prepare, EveryLineIsAccountedForInFileOrder) {
  for (int round = 0; round < 20; ++round) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed_trace(seed));
    std::mt19937_64 rng(seed);
    Expected e;
    const int64_t pack = uniform(rng, 0, 1) ? uniform(rng, 40, 150) : 0;
    TempDir dir;
    write_file(dir / "d.jsonl", random_dataset(rng, pack, e));
    PrepareOptions o;
    o.pack_tokens = pack;
    o.block_lines = static_cast<size_t>(uniform(rng, 1, 50));
    o.threads = static_cast<unsigned>(uniform(rng, 1, 4));
    std::vector<size_t> block_sizes;
    PreparedDataset d;
    d.report = prepare_stream(dir / "d.jsonl", o, nullptr, [&](PreparedBlock&& b) {
      block_sizes.push_back(b.examples.size());
      for (auto& ex : b.examples) d.examples.push_back(std::move(ex));
      d.lines.insert(d.lines.end(), b.lines.begin(), b.lines.end());
    });
    const DataReport& r = d.report;
    EXPECT_EQ(r.examples_read, e.read);
    EXPECT_EQ(r.kept, static_cast<int64_t>(e.kept.size()));
    EXPECT_EQ(r.kept + r.dropped_total(), r.examples_read);
    EXPECT_EQ(d.lines, e.kept_lines);
    ASSERT_EQ(d.examples.size(), e.kept.size());
    for (size_t i = 0; i < e.kept.size(); ++i) {
      EXPECT_EQ(d.examples[i].index, static_cast<int64_t>(i));
      EXPECT_EQ(d.examples[i].prompt, e.kept[i].prompt);
      EXPECT_EQ(d.examples[i].responses, e.kept[i].responses);
    }
    ASSERT_EQ(r.problems.size(), e.problems.size());
    // Within a line the order of problems is the parser's; compare as sets per line.
    auto sorted = [](std::vector<std::pair<int64_t, std::string>> v) {
      std::sort(v.begin(), v.end());
      return v;
    };
    std::vector<std::pair<int64_t, std::string>> got;
    for (const auto& p : r.problems) got.push_back({p.line, p.kind});
    EXPECT_EQ(sorted(got), sorted(e.problems));
    for (size_t i = 1; i < r.problems.size(); ++i) EXPECT_LE(r.problems[i - 1].line, r.problems[i].line);
    for (size_t s : block_sizes) EXPECT_GT(s, 0u);
  }
}

TEST(Prepare, OnErrorFailCountsAllProblemsAndSkipDropsThem) {
  TempDir dir;
  write_file(dir / "d.jsonl",
             "{\"prompt_input_ids\": [1], \"chosen_input_ids\": [2], \"rejected_input_ids\": [3]}\n"
             "oops\n"
             "{\"prompt_input_ids\": [1], \"chosen_input_ids\": [2], \"rejected_input_ids\": [2]}\n");
  try {
    prepare_dataset(dir / "d.jsonl", {}, nullptr, OnError::fail);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("2 problems"), std::string::npos) << what;
    EXPECT_NE(what.find("d.jsonl:2"), std::string::npos) << what;
    EXPECT_NE(what.find("d.jsonl:3"), std::string::npos) << what;
    EXPECT_NE(what.find("--on-error skip"), std::string::npos) << what;
  }
  PreparedDataset d = prepare_dataset(dir / "d.jsonl", {}, nullptr, OnError::skip);
  EXPECT_EQ(d.examples.size(), 1u);
  EXPECT_EQ(d.report.dropped.at(std::string(problem::malformed_json)), 1);
  EXPECT_EQ(d.report.dropped.at(std::string(problem::identical)), 1);
  EXPECT_THROW(parse_on_error("ignore"), Error);
}

TEST(Prepare, TruncationCountsAndDrops) {
  TempDir dir;
  write_file(dir / "d.jsonl",
             "{\"prompt_input_ids\": [1,2,3,4,5,6], \"chosen_input_ids\": [7,8,9], \"rejected_input_ids\": [7,8,10]}\n"
             "{\"prompt_input_ids\": [1,2], \"chosen_input_ids\": [7,8,9], \"rejected_input_ids\": [7,9,10]}\n"
             "{\"prompt_input_ids\": [1], \"chosen_input_ids\": [7], \"rejected_input_ids\": [8]}\n");
  PrepareOptions o;
  o.truncation = {4, 3};  // prompts keep 3 tokens, chains 4: responses keep 1 or 2
  PreparedDataset d = prepare_dataset(dir / "d.jsonl", o, nullptr, OnError::fail);
  EXPECT_EQ(d.report.prompt_truncated, 1);
  EXPECT_EQ(d.report.responses_truncated, 2);
  EXPECT_EQ(d.report.dropped.at(std::string(drop_reason::identical_after_truncation)), 1);  // [7] == [7]
  ASSERT_EQ(d.examples.size(), 2u);
  EXPECT_EQ(d.lines, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(d.examples[0].prompt, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(d.examples[0].responses, (std::vector<std::vector<uint32_t>>{{7, 8}, {7, 9}}));
  EXPECT_EQ(d.examples[1].responses, (std::vector<std::vector<uint32_t>>{{7}, {8}}));
}

TEST(Prepare, TextWithoutATokenizerIsCheckedOrRefused) {
  TempDir dir;
  write_file(dir / "t.jsonl", "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n{\"prompt\": \"\", \"chosen\": \"a\", \"rejected\": \"b\"}\n");
  PrepareOptions check;
  check.require_tokens = false;
  std::vector<PreparedBlock> blocks;
  DataReport r = prepare_stream(dir / "t.jsonl", check, nullptr, [&](PreparedBlock&& b) { blocks.push_back(std::move(b)); });
  EXPECT_EQ(r.kept, 1);
  EXPECT_EQ(r.problems.size(), 1u);
  EXPECT_TRUE(blocks.empty());  // nothing tokenized
  EXPECT_FALSE(r.notes.empty());
  try {
    prepare_stream(dir / "t.jsonl", PrepareOptions{}, nullptr, [](PreparedBlock&&) {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("t.jsonl:1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--tokenizer"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace duet::data
