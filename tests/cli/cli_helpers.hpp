#pragma once
// Helpers for the CLI tests: running the duet binary, temporary folders, tiny
// model configs and random pre-tokenized preference data.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/seeds.hpp"
#include "layout/example.hpp"

namespace duet::cli::testing {

namespace fs = std::filesystem;
using nlohmann::json;

using ::duet::test::fresh_seed;

inline int uniform(std::mt19937_64& rng, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }

// A folder removed with everything in it when the object goes away.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("duet_cli_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  fs::path operator/(const std::string& name) const { return path_ / name; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct Result {
  int status = -1;
  std::string out, err;
};

// Runs `duet ARGS` with stdout and stderr captured in files of `dir`.
inline Result run_duet(const TempDir& dir, const std::string& args) {
  const fs::path out = dir / "stdout", err = dir / "stderr";
  const std::string cmd = std::string(DUET_BINARY) + " " + args + " > " + out.string() + " 2> " + err.string();
  const int rc = std::system(cmd.c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_file(out), read_file(err)};
}

// A failure reported the way the CLI promises: non-zero exit, one line on
// stderr naming the error and containing `needle`, nothing on stdout.
inline void expect_one_line_error(const Result& r, const std::string& needle) {
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.err.rfind("duet: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.out, "");
}

// Tiny configs of two families: Llama with GQA and llama3 RoPE scaling (small
// original context, so the scaling matters), Qwen2 with tied embeddings.
inline json tiny_config(const std::string& architecture, int64_t vocab) {
  json c = {{"architectures", {architecture}},
            {"vocab_size", vocab},
            {"hidden_size", 32},
            {"intermediate_size", 64},
            {"num_hidden_layers", 2},
            {"num_attention_heads", 4},
            {"num_key_value_heads", 2},
            {"hidden_act", "silu"},
            {"rms_norm_eps", 1e-5},
            {"max_position_embeddings", 512},
            {"tie_word_embeddings", false}};
  if (architecture == "LlamaForCausalLM") {
    c["model_type"] = "llama";
    c["rope_theta"] = 500000.0;
    c["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", 8.0},
                         {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 32}};
  } else if (architecture == "Qwen2ForCausalLM") {
    c["model_type"] = "qwen2";
    c["tie_word_embeddings"] = true;
  }
  return c;
}

inline std::vector<layout::TokenizedExample> random_examples(std::mt19937_64& rng, int n, int vocab,
                                                             int max_prompt, int max_response) {
  std::vector<layout::TokenizedExample> out;
  auto ids = [&](int len) {
    std::vector<layout::TokenId> v(static_cast<size_t>(len));
    for (auto& t : v) t = static_cast<layout::TokenId>(uniform(rng, 0, vocab - 1));
    return v;
  };
  for (int i = 0; i < n; ++i) {
    layout::TokenizedExample e;
    e.index = i;
    e.prompt = ids(uniform(rng, 1, max_prompt));
    e.responses = {ids(uniform(rng, 1, max_response)), {}};
    do e.responses[1] = ids(uniform(rng, 1, max_response));
    while (e.responses[1] == e.responses[0]);  // the data layer rejects identical responses
    out.push_back(std::move(e));
  }
  return out;
}

// The pre-tokenized JSONL format (TRL's column names), one example per line.
inline std::string to_jsonl(const std::vector<layout::TokenizedExample>& examples) {
  std::string s;
  for (const auto& e : examples)
    s += json{{"prompt_input_ids", e.prompt},
              {"chosen_input_ids", e.responses[0]},
              {"rejected_input_ids", e.responses[1]}}
             .dump() +
         "\n";
  return s;
}

inline std::vector<json> parse_lines(const std::string& text) {
  std::vector<json> out;
  size_t b = 0;
  for (size_t e; (e = text.find('\n', b)) != std::string::npos; b = e + 1)
    out.push_back(json::parse(text.substr(b, e - b)));
  EXPECT_EQ(b, text.size()) << "output does not end with a newline";
  return out;
}

// A model made by duet init (tiny Llama, vocabulary 300) and random
// pre-tokenized preference data, for duet train.
struct TrainSetup {
  TempDir dir;
  std::string model, data;
  explicit TrainSetup(int examples) {
    std::mt19937_64 rng(fresh_seed());
    write_file(dir / "config.json", tiny_config("LlamaForCausalLM", 300).dump());
    model = (dir / "model").string();
    data = (dir / "data.jsonl").string();
    EXPECT_EQ(run_duet(dir, "init --config " + (dir / "config.json").string() + " --out " + model + " --std 0.3").status, 0);
    write_file(data, to_jsonl(random_examples(rng, examples, 300, 20, 12)));
  }
  // duet train arguments: this model and data into `out`, batches of 2, plain log lines.
  std::string train(const fs::path& out) const {
    return "train --model " + model + " --data " + data + " --out " + out.string() + " --batch-size 2 --no-progress";
  }
};

inline std::vector<json> metrics(const fs::path& out) { return parse_lines(read_file(out / "metrics.jsonl")); }

// The records a running process has logged so far. Its last line may be half
// there: the kernel grows a file a page at a time while write() copies, so a
// reader can see a line cut at a 4096-byte boundary.
inline std::vector<json> metrics_so_far(const fs::path& out) {
  if (!fs::exists(out / "metrics.jsonl")) return {};
  std::string text = read_file(out / "metrics.jsonl");
  text.resize(text.rfind('\n') + 1);  // npos + 1 == 0: no complete line yet
  return parse_lines(text);
}

}  // namespace duet::cli::testing
