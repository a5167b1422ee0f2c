// `duet tokenize` end to end: modes, and one clear error line (non-zero exit)
// for each kind of bad input.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "assets.hpp"

namespace {

struct Result {
  int status;
  std::string out, err;
};

Result run(const std::string& args, const std::string& input) {
  auto dir = std::filesystem::temp_directory_path() / ("duet_cli_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  { std::ofstream(dir / "in", std::ios::binary) << input; }
  std::string cmd = std::string(DUET_BINARY) + " tokenize " + args + " < " + (dir / "in").string() + " > " +
                    (dir / "out").string() + " 2> " + (dir / "err").string();
  int rc = std::system(cmd.c_str());
  auto slurp = [](const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  Result r{WEXITSTATUS(rc), slurp(dir / "out"), slurp(dir / "err")};
  std::filesystem::remove_all(dir);
  return r;
}

std::string llama3() { return "--tokenizer " + duet::tok::testing::tokenizer_dir("llama3").string(); }

TEST(CliTokenize, EncodesLinesAndJsonlAndDecodes) {
  Result r = run(llama3(), "grabbed\n grabbed\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "[59312,2788]\n[30418]\n");  // expected ids from llama3-tokenizer-js's own tests
  Result j = run(llama3() + " --jsonl", "\"a\\nb\"\n");
  ASSERT_EQ(j.status, 0) << j.err;
  Result d = run(llama3() + " --decode", j.out);
  ASSERT_EQ(d.status, 0) << d.err;
  EXPECT_EQ(d.out, "\"a\\nb\"\n");
}

void expect_one_line_error(const Result& r, const std::string& needle) {
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("error"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(CliTokenize, InvalidUtf8ReportsTheLine) {
  expect_one_line_error(run(llama3(), "fine\nbad \xC3\x28 text\n"), "<stdin>:2");
}

TEST(CliTokenize, BadJsonlAndBadIdsReportTheLine) {
  expect_one_line_error(run(llama3() + " --jsonl", "\"ok\"\nnot json\n"), "<stdin>:2");
  expect_one_line_error(run(llama3() + " --decode", "[1,2]\n[1,99999999]\n"), "<stdin>:2");
}

TEST(CliTokenize, MissingAndMalformedTokenizerFiles) {
  expect_one_line_error(run("--tokenizer /nonexistent/tok.json", ""), "/nonexistent/tok.json");
  auto dir = std::filesystem::temp_directory_path() / ("duet_tok_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  expect_one_line_error(run("--tokenizer " + dir.string(), ""), "no tokenizer.json");
  { std::ofstream(dir / "tokenizer.json") << "{\"model\": {\"type\": \"BPE\", \"vocab\": "; }
  expect_one_line_error(run("--tokenizer " + dir.string(), ""), "not valid JSON");
  { std::ofstream(dir / "tokenizer.json") << R"({"model":{"type":"Unigram","vocab":[]}})"; }
  expect_one_line_error(run("--tokenizer " + dir.string(), ""), "Unigram");
  { std::ofstream(dir / "tokenizer.json") << R"({"model":{"type":"BPE","vocab":{},"merges":[]},"pre_tokenizer":{"type":"CharDelimiterSplit"}})"; }
  expect_one_line_error(run("--tokenizer " + dir.string(), ""), "CharDelimiterSplit");
  std::filesystem::remove_all(dir);
}

}  // namespace
