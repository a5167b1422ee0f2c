// `duet data stats` and `duet data check` end to end: JSON keys, file:line
// reports, exit codes, --on-error, and the acceptance check that synthetic
// profiles give the shared/paired token ratio (2r+2)/(r+2).
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include "assets.hpp"
#include "helpers.hpp"

namespace duet::data {
namespace {

using nlohmann::json;
using testing::TempDir;
using testing::write_file;

struct Result {
  int status;
  std::string out, err;
};

Result run(const std::string& command, const TempDir& dir) {
  const std::string cmd = command + " > " + (dir / "stdout").string() + " 2> " + (dir / "stderr").string();
  const int rc = std::system(cmd.c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, testing::read_file(dir / "stdout"), testing::read_file(dir / "stderr")};
}

Result duet(const std::string& args, const TempDir& dir) { return run(std::string(DUET_BINARY) + " data " + args, dir); }

std::string tokenizer(const std::string& family) { return " --tokenizer " + testing::tokenizer_dir(family).string(); }

const std::string kBadFile =
    "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"
    "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"a\"}\n"
    "{\"prompt\": \"p\", \"chosen\": \"a\"\n"
    "{\"prompt\": \"\", \"chosen\": \"a\", \"rejected\": \"b\"}\n";

TEST(CliData, StatsJsonHasTheRequiredKeys) {
  TempDir dir;
  const Result r = duet("stats --json --data " + (testing::source_dir() / "data/demo/wordnet_chat.jsonl").string() +
                            tokenizer("qwen3") + " --max-length 64 --pack-tokens 512",
                        dir);
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = json::parse(r.out);
  for (const char* key : {"examples", "dropped", "tokens_paired", "tokens_shared", "tokens_paired_packed",
                          "tokens_shared_packed", "lengths", "median_prompt_completion_ratio", "truncated"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_GT(j["examples"].get<int64_t>(), 0);
  EXPECT_EQ(j["pack_tokens"].get<int64_t>(), 512);
  EXPECT_LE(j["lengths"]["prompt"]["max"].get<int64_t>() + j["lengths"]["chosen"]["max"].get<int64_t>(), 64 + 64);
  EXPECT_LT(j["tokens_shared"].get<int64_t>(), j["tokens_paired"].get<int64_t>());
  EXPECT_NE(j["chat_template"].get<std::string>().find("qwen3"), std::string::npos);
}

TEST(CliData, CheckListsEveryProblemWithFileAndLine) {
  TempDir dir;
  write_file(dir / "bad.jsonl", kBadFile);
  const std::string file = (dir / "bad.jsonl").string();
  const Result r = duet("check --data " + file, dir);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.out.find(file + ":2: rejected:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(file + ":3: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(file + ":4: prompt:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3 problems"), std::string::npos) << r.out;
  const Result j = duet("check --json --data " + file + tokenizer("llama3"), dir);
  EXPECT_EQ(j.status, 1);
  EXPECT_EQ(json::parse(j.out)["problems"].size(), 3u);
  write_file(dir / "good.jsonl", "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n");
  EXPECT_EQ(duet("check --data " + (dir / "good.jsonl").string(), dir).status, 0);
}

TEST(CliData, StatsFailsOnProblemsUnlessSkipped) {
  TempDir dir;
  write_file(dir / "bad.jsonl", kBadFile);
  const std::string args = "stats --json --data " + (dir / "bad.jsonl").string() + tokenizer("llama3");
  const Result fail = duet(args, dir);
  EXPECT_EQ(fail.status, 1);
  EXPECT_NE(fail.err.find("3 problems"), std::string::npos) << fail.err;
  EXPECT_NE(fail.err.find("bad.jsonl:2"), std::string::npos) << fail.err;
  const Result skip = duet(args + " --on-error skip", dir);
  ASSERT_EQ(skip.status, 0) << skip.err;
  const json j = json::parse(skip.out);
  EXPECT_EQ(j["examples"].get<int64_t>(), 1);
  EXPECT_EQ(j["dropped"].get<int64_t>(), 3);
}

TEST(CliData, UsageErrorsSayWhatToDo) {
  TempDir dir;
  const Result missing = duet("stats --data " + (dir / "none.jsonl").string() + tokenizer("llama3"), dir);
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.err.find("none.jsonl"), std::string::npos) << missing.err;
  write_file(dir / "d.jsonl", "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n");
  const Result no_tokenizer = duet("stats --data " + (dir / "d.jsonl").string(), dir);
  EXPECT_EQ(no_tokenizer.status, 1);
  EXPECT_NE(no_tokenizer.err.find("--tokenizer"), std::string::npos) << no_tokenizer.err;
  const Result both = duet("stats --data " + (dir / "d.jsonl").string() + tokenizer("llama3") + " --model " +
                               testing::tokenizer_dir("llama3").string(),
                           dir);
  EXPECT_NE(both.status, 0);
  const Result bad_limit = duet("stats --data " + (dir / "d.jsonl").string() + tokenizer("llama3") +
                                    " --max-length 10 --max-prompt-length 10",
                                dir);
  EXPECT_EQ(bad_limit.status, 1);
  EXPECT_NE(bad_limit.err.find("--max-prompt-length"), std::string::npos) << bad_limit.err;
}

// Acceptance (issue 3): on synthetic profiles with chosen and rejected equally
// long, tokens_paired / tokens_shared = (2r+2)/(r+2) for the profile's r.
TEST(CliData, SyntheticProfilesMatchTheSharingFormula) {
  const std::pair<const char*, double> profiles[] = {{"capybara", 1.59},      {"hh-rlhf", 2.15},
                                                     {"metamath-dpo", 3.91},  {"tldr", 11.14},
                                                     {"tulu-helpsteer", 6.34}, {"ultrafeedback", 0.42}};
  const uint64_t seed = testing::fresh_seed() % 1000000;
  SCOPED_TRACE(testing::seed_trace(seed));
  for (const auto& [profile, r] : profiles) {
    SCOPED_TRACE(profile);
    TempDir dir;
    const std::string file = (dir / "syn.jsonl").string();
    const Result gen = run("python3 " + (testing::source_dir() / "scripts/make_synthetic_data.py").string() +
                               " --profile " + profile + " --examples 400 --equal-responses --seed " +
                               std::to_string(seed) + " --out " + file,
                           dir);
    ASSERT_EQ(gen.status, 0) << gen.err;
    const Result stats = duet("stats --json --max-length 0 --data " + file, dir);  // untruncated lengths
    ASSERT_EQ(stats.status, 0) << stats.err;
    const json j = json::parse(stats.out);
    EXPECT_EQ(j["examples"].get<int64_t>(), 400);
    const double measured = j["tokens_paired"].get<double>() / j["tokens_shared"].get<double>();
    const double formula = (2 * r + 2) / (r + 2);
    EXPECT_NEAR(measured, formula, 0.005 * formula);  // rounding of the prompt/response split
    EXPECT_NEAR(j["median_prompt_completion_ratio"].get<double>(), r, 0.05 * r);
    EXPECT_GE(j["tokens_shared_packed"].get<int64_t>(), j["tokens_shared"].get<int64_t>());
  }
}

}  // namespace
}  // namespace duet::data
