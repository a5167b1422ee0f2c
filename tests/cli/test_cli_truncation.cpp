// Truncation: every command that tokenizes a dataset (duet data stats, duet
// logprobs, duet ref, duet train) applies the same defaults, max_length 1024 and
// max_prompt_length min(512, max_length / 2), and the same cut for the same
// --max-length; `--max-length 0` turns it off where a command allows it.
#include "cli_helpers.hpp"

namespace duet::cli::testing {
namespace {

struct LongData {
  TempDir dir;
  std::string model, data;
  LongData() {
    std::mt19937_64 rng(fresh_seed());
    json config = tiny_config("LlamaForCausalLM", 300);
    config["max_position_embeddings"] = 2048;
    write_file(dir / "config.json", config.dump());
    model = (dir / "model").string();
    data = (dir / "data.jsonl").string();
    EXPECT_EQ(run_duet(dir, "init --config " + (dir / "config.json").string() + " --out " + model).status, 0);
    // Line 1: a 700-token prompt (over 512); line 2: 400 + 700 tokens (over 1024); line 3: short.
    auto examples = random_examples(rng, 3, 300, 20, 12);
    auto ids = [&](int n) {
      std::vector<layout::TokenId> v(static_cast<size_t>(n));
      for (auto& t : v) t = static_cast<layout::TokenId>(uniform(rng, 0, 299));
      return v;
    };
    examples[0].prompt = ids(700);
    examples[1].prompt = ids(400);
    examples[1].responses = {ids(700), ids(650)};
    write_file(data, to_jsonl(examples));
  }
  // duet logprobs' chosen_tokens per line.
  std::vector<int64_t> chosen_tokens(const std::string& extra) {
    Result r = run_duet(dir, "logprobs --model " + model + " --data " + data + " " + extra);
    EXPECT_EQ(r.status, 0) << r.err;
    std::vector<int64_t> n;
    for (const auto& line : parse_lines(r.out)) n.push_back(line["chosen_tokens"].get<int64_t>());
    return n;
  }
  json stats(const std::string& extra) {
    Result r = run_duet(dir, "data stats --json --data " + data + " " + extra);
    EXPECT_EQ(r.status, 0) << r.err;
    return r.status == 0 ? json::parse(r.out) : json::object();
  }
};

TEST(CliTruncation, EveryCommandHasTheSameDefaults) {
  LongData s;
  const json stats = s.stats("");
  EXPECT_EQ(stats["truncation"], (json{{"max_length", 1024}, {"max_prompt_length", 512}}));
  EXPECT_EQ(stats["truncated"], (json{{"prompt", 1}, {"responses", 1}}));
  // Line 2 keeps its 400-token prompt and 1024 - 400 tokens of each response.
  const auto untruncated = s.chosen_tokens("--max-length 0");
  ASSERT_EQ(untruncated.size(), 3u);
  EXPECT_EQ(s.chosen_tokens(""), (std::vector<int64_t>{untruncated[0], 624, untruncated[2]}));
  // duet ref's cache holds hashes of each example's tokens after truncation:
  // duet train, with its own defaults, accepts it only if it cut the same way.
  const fs::path cache = s.dir / "ref.jsonl", out = s.dir / "out";
  Result ref = run_duet(s.dir, "ref --model " + s.model + " --data " + s.data + " --out " + cache.string());
  ASSERT_EQ(ref.status, 0) << ref.err;
  Result train = run_duet(s.dir, "train --model " + s.model + " --data " + s.data + " --out " + out.string() +
                                     " --ref-cache " + cache.string() + " --batch-size 3 --max-steps 1 --no-progress");
  ASSERT_EQ(train.status, 0) << train.err;
  EXPECT_NE(train.err.find("1 prompts and 1 examples' responses truncated"), std::string::npos) << train.err;
  EXPECT_NE(train.err.find("max_length 1024, max_prompt_length 512"), std::string::npos) << train.err;
}

TEST(CliTruncation, MaxLengthAloneWorksTheSameEverywhere) {
  LongData s;
  const json stats = s.stats("--max-length 256");
  EXPECT_EQ(stats["truncation"], (json{{"max_length", 256}, {"max_prompt_length", 128}}));
  EXPECT_EQ(stats["truncated"]["prompt"], 2);
  const auto n = s.chosen_tokens("--max-length 256");
  ASSERT_EQ(n.size(), 3u);
  EXPECT_EQ(n[1], 256 - 128);
  const fs::path cache = s.dir / "ref.jsonl";
  ASSERT_EQ(run_duet(s.dir, "ref --max-length 256 --model " + s.model + " --data " + s.data + " --out " + cache.string())
                .status,
            0);
  Result train = run_duet(s.dir, "train --max-length 256 --model " + s.model + " --data " + s.data + " --out " +
                                     (s.dir / "out").string() + " --ref-cache " + cache.string() +
                                     " --batch-size 3 --max-steps 1 --no-progress");
  EXPECT_EQ(train.status, 0) << train.err;
  // A cache of other truncation is refused.
  Result other = run_duet(s.dir, "train --model " + s.model + " --data " + s.data + " --out " +
                                     (s.dir / "out2").string() + " --ref-cache " + cache.string() +
                                     " --batch-size 3 --max-steps 1 --no-progress");
  EXPECT_NE(other.status, 0);
}

TEST(CliTruncation, MaxLengthZeroTurnsItOffForInspection) {
  LongData s;
  const json stats = s.stats("--max-length 0");
  EXPECT_EQ(stats["truncation"], (json{{"max_length", 0}, {"max_prompt_length", 0}}));
  EXPECT_EQ(stats["truncated"], (json{{"prompt", 0}, {"responses", 0}}));
  EXPECT_EQ(s.chosen_tokens("--max-length 0")[1], 700);
  expect_one_line_error(run_duet(s.dir, "data stats --data " + s.data + " --max-prompt-length -2"),
                        "--max-prompt-length must be >= 0");
}

}  // namespace
}  // namespace duet::cli::testing
