// duet init / duet logprobs on bad inputs: one clear error line each, a
// non-zero exit, and nothing half-written.
#include "cli_helpers.hpp"

namespace duet::cli::testing {
namespace {

// A folder with a config, a model made by duet init, and valid data.
struct Fixture {
  TempDir dir;
  std::mt19937_64 rng{fresh_seed()};
  std::vector<layout::TokenizedExample> examples;

  Fixture() {
    write_file(dir / "config.json", tiny_config("LlamaForCausalLM", 300).dump());
    Result init = run_duet(dir, "init --config " + str("config.json") + " --out " + str("model"));
    EXPECT_EQ(init.status, 0) << init.err;
    examples = random_examples(rng, 6, 300, 10, 10);
    write_file(dir / "data.jsonl", to_jsonl(examples));
  }
  std::string str(const std::string& name) const { return (dir / name).string(); }
  Result logprobs(const std::string& model, const std::string& data, const std::string& extra = "") {
    return run_duet(dir, "logprobs --model " + str(model) + " --data " + str(data) + extra);
  }
};

TEST(CliErrors, InitRefusesANonEmptyFolderUnlessForced) {
  Fixture f;
  const std::string before = read_file(f.dir / "model" / "model.safetensors");
  const std::string args = "init --config " + f.str("config.json") + " --out " + f.str("model") + " --seed 7";
  expect_one_line_error(run_duet(f.dir, args), "not empty");
  EXPECT_EQ(read_file(f.dir / "model" / "model.safetensors"), before);
  Result forced = run_duet(f.dir, args + " --force");
  ASSERT_EQ(forced.status, 0) << forced.err;
  EXPECT_NE(read_file(f.dir / "model" / "model.safetensors"), before);  // another seed, other weights
}

TEST(CliErrors, InitRejectsAnUnsupportedArchitecture) {
  Fixture f;
  auto config = tiny_config("LlamaForCausalLM", 300);
  config["architectures"] = {"GPT2LMHeadModel"};
  config["model_type"] = "gpt2";
  write_file(f.dir / "gpt2.json", config.dump());
  expect_one_line_error(run_duet(f.dir, "init --config " + f.str("gpt2.json") + " --out " + f.str("gpt2")),
                        "GPT2LMHeadModel");
  EXPECT_FALSE(fs::exists(f.dir / "gpt2"));
}

TEST(CliErrors, InitRejectsBadDtypeAndStd) {
  Fixture f;
  const std::string args = "init --config " + f.str("config.json") + " --out " + f.str("other");
  expect_one_line_error(run_duet(f.dir, args + " --dtype int8"), "--dtype");
  expect_one_line_error(run_duet(f.dir, args + " --std 0"), "--std");
  EXPECT_FALSE(fs::exists(f.dir / "other"));
}

TEST(CliErrors, TruncatedSafetensors) {
  Fixture f;
  const auto file = f.dir / "model" / "model.safetensors";
  // Cut at a random point past the header: the header promises more bytes.
  const auto size = fs::file_size(file);
  fs::resize_file(file, static_cast<uintmax_t>(uniform(f.rng, 1024, static_cast<int>(size) - 1)));
  expect_one_line_error(f.logprobs("model", "data.jsonl"), "model.safetensors");
}

TEST(CliErrors, MissingWeights) {
  Fixture f;
  fs::remove(f.dir / "model" / "model.safetensors");
  expect_one_line_error(f.logprobs("model", "data.jsonl"), "no model.safetensors");
}

TEST(CliErrors, ConfigThatDoesNotMatchTheWeights) {
  Fixture f;
  auto config = tiny_config("LlamaForCausalLM", 300);
  config["intermediate_size"] = uniform(f.rng, 65, 100);  // the weights have 64
  write_file(f.dir / "model" / "config.json", config.dump());
  expect_one_line_error(f.logprobs("model", "data.jsonl"), "has shape");
}

TEST(CliErrors, TokenIdsOutsideTheModelVocabulary) {
  Fixture f;
  auto examples = f.examples;
  const size_t which = static_cast<size_t>(uniform(f.rng, 0, static_cast<int>(examples.size()) - 1));
  auto& ids = examples[which].responses[1];
  ids[static_cast<size_t>(uniform(f.rng, 0, static_cast<int>(ids.size()) - 1))] =
      static_cast<layout::TokenId>(uniform(f.rng, 300, 5000));
  write_file(f.dir / "bad.jsonl", to_jsonl(examples));
  for (const char* layout : {" --layout paired", " --layout shared --pack-tokens 64"})
    expect_one_line_error(f.logprobs("model", "bad.jsonl", layout),
                          "bad.jsonl:" + std::to_string(which + 1) + ": token id");
}

TEST(CliErrors, TokenizerLargerThanTheModel) {
  Fixture f;
  // The smallest tokenizer that loads, with one id past the model's 300.
  const int id = uniform(f.rng, 300, 1000);
  write_file(f.dir / "tokenizer.json",
             json{{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}}}, {"merges", json::array()}}},
                  {"added_tokens", {{{"id", id}, {"content", "<x>"}, {"special", true}}}}}
                 .dump());
  expect_one_line_error(f.logprobs("model", "data.jsonl", " --tokenizer " + f.str("tokenizer.json")), "does not fit");
  const std::string init = "init --config " + f.str("config.json") + " --out " + f.str("with_tok");
  expect_one_line_error(run_duet(f.dir, init + " --tokenizer " + f.str("tokenizer.json")), "would not fit");
  EXPECT_FALSE(fs::exists(f.dir / "with_tok"));
}

TEST(CliErrors, DeviceGoesToTheEngine) {
  Fixture f;
  // This build's engines decide which devices exist (the CPU engine only, here).
  expect_one_line_error(f.logprobs("model", "data.jsonl", " --device cuda"), "--device cuda");
  expect_one_line_error(run_duet(f.dir, "ref --model " + f.str("model") + " --data " + f.str("data.jsonl") +
                                            " --out " + f.str("ref.jsonl") + " --device cuda"),
                        "--device cuda");
  EXPECT_FALSE(fs::exists(f.dir / "ref.jsonl"));
  // Not a device at all: refused by the command line.
  EXPECT_NE(f.logprobs("model", "data.jsonl", " --device tpu").status, 0);
}

TEST(CliErrors, BadLayoutAndPackingTooSmall) {
  Fixture f;
  expect_one_line_error(f.logprobs("model", "data.jsonl", " --layout tree"), "tree");
  EXPECT_NE(f.logprobs("model", "data.jsonl", " --pack-tokens 4").status, 0);
}

}  // namespace
}  // namespace duet::cli::testing

namespace duet::cli::testing {
namespace {

// --model naming a file (config.json itself), for every command that takes a
// model: one line saying it must be the folder (was: ".../config.json/config.json").
TEST(CliErrors, ModelNamingAFileSaysToPassTheFolder) {
  Fixture f;
  const std::string file = f.str("model/config.json"), data = f.str("data.jsonl");
  expect_one_line_error(f.logprobs("model/config.json", "data.jsonl"), "is a file, not a folder");
  expect_one_line_error(run_duet(f.dir, "ref --model " + file + " --data " + data + " --out " + f.str("ref.bin")),
                        "is a file, not a folder");
  expect_one_line_error(run_duet(f.dir, "train --model " + file + " --data " + data + " --out " + f.str("out")),
                        "is a file, not a folder");
  EXPECT_FALSE(fs::exists(f.dir / "out"));
}

// Text data with a model folder that has no tokenizer.json: the message says
// none was found and what to pass (was: "pass --tokenizer PATH or --model DIR"
// although --model DIR had been given).
TEST(CliErrors, TextDataWithoutATokenizerSaysNoneWasFound) {
  Fixture f;
  write_file(f.dir / "text.jsonl", R"({"prompt": "hi", "chosen": "a", "rejected": "b"})" "\n");
  const Result r = run_duet(f.dir, "train --model " + f.str("model") + " --data " + f.str("text.jsonl") +
                                       " --out " + f.str("out") + " --max-steps 1");
  expect_one_line_error(r, "none was found");
  EXPECT_NE(r.err.find("--tokenizer"), std::string::npos) << r.err;
}

// --data /dev/stdin (a pipe, read once, not seekable) trains like the file.
TEST(CliErrors, DataFromStdinTrains) {
  Fixture f;
  const Result r = run_duet(f.dir, "train --model " + f.str("model") + " --data /dev/stdin --out " + f.str("out") +
                                       " --max-steps 1 --batch-size 2 --no-progress < " + f.str("data.jsonl"));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(fs::exists(f.dir / "out" / "model.safetensors"));
}

}  // namespace
}  // namespace duet::cli::testing
