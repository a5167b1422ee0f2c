// duet init + duet logprobs end to end: a random model written by init, random
// pre-tokenized data; the paired, shared and shared+packed layouts give the
// same log-probs, in input order, and the same numbers as the engine called
// directly on the model folder.
#include <cmath>

#include "cli_helpers.hpp"
#include "engine/scoring.hpp"
#include "layout/pack_rows.hpp"
#include "model/config.hpp"

namespace duet::cli::testing {
namespace {

// Log-probs straight from the engine, one example per row (the paired format).
std::vector<std::vector<double>> engine_logps(const fs::path& model_dir,
                                              const std::vector<layout::TokenizedExample>& examples) {
  const auto config = model::load_config(model_dir);
  engine::ParameterSet<float> params(config);
  engine::load_weights(params, model_dir);
  const engine::Transformer<float> model(config);
  engine::Workspace<float> ws;
  std::vector<std::vector<double>> out(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) out[i].resize(examples[i].responses.size());
  for (const auto& row : layout::pack_examples(examples, layout::Layout::paired, 0, 0))
    for (const auto& r : engine::score(model, params, engine::make_batch(row), ws))
      out[static_cast<size_t>(r.example)][static_cast<size_t>(r.response)] = r.logp;
  return out;
}

class CliModel : public ::testing::TestWithParam<std::string> {};

TEST_P(CliModel, LayoutsAgreeFollowInputOrderAndMatchTheEngine) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  TempDir dir;
  const int vocab = 300;
  write_file(dir / "config.json", tiny_config(GetParam(), vocab).dump());
  // A large std so that log-probs are far from uniform and layouts that mixed
  // up positions or masks would show.
  Result init = run_duet(dir, "init --config " + (dir / "config.json").string() + " --out " +
                                  (dir / "model").string() + " --std 0.5 --seed " + std::to_string(rng()));
  ASSERT_EQ(init.status, 0) << init.err;
  EXPECT_TRUE(fs::exists(dir / "model" / "model.safetensors"));
  EXPECT_EQ(model::load_config(dir / "model"), model::load_config(dir / "config.json"));

  // Prompts past the llama3 scaling's original context (32); responses long
  // enough that packed rows hold several examples of different lengths.
  const auto examples = random_examples(rng, 25, vocab, 60, 30);
  write_file(dir / "data.jsonl", to_jsonl(examples));
  const std::string base = "logprobs --model " + (dir / "model").string() + " --data " + (dir / "data.jsonl").string();
  const char* variants[] = {" --layout paired", " --layout shared", " --layout shared --pack-tokens 256",
                            " --layout paired --pack-tokens 256 --threads 1 --device cpu"};
  std::vector<std::vector<json>> outputs;
  for (const char* v : variants) {
    Result r = run_duet(dir, base + v);
    ASSERT_EQ(r.status, 0) << v << ": " << r.err;
    EXPECT_EQ(r.err, "");
    outputs.push_back(parse_lines(r.out));
    ASSERT_EQ(outputs.back().size(), examples.size()) << v;
  }

  const auto direct = engine_logps(dir / "model", examples);
  for (size_t i = 0; i < examples.size(); ++i) {
    SCOPED_TRACE("example " + std::to_string(i));
    const json& paired = outputs[0][i];
    // Input order: the line, and token counts that differ from example to example.
    EXPECT_EQ(paired["line"], i + 1);
    EXPECT_EQ(paired["chosen_tokens"], examples[i].responses[0].size());
    EXPECT_EQ(paired["rejected_tokens"], examples[i].responses[1].size());
    EXPECT_FALSE(paired.contains("responses"));
    const double chosen = paired["chosen_logp"], rejected = paired["rejected_logp"];
    // Same computation as the engine called here: equal up to BLAS threading.
    EXPECT_NEAR(chosen, direct[i][0], 1e-6 * std::abs(direct[i][0]));
    EXPECT_NEAR(rejected, direct[i][1], 1e-6 * std::abs(direct[i][1]));
    EXPECT_LT(chosen, 0);
    // Far from uniform: a model that ignored its weights would give n*log(1/V).
    EXPECT_GT(std::abs(chosen + std::log(vocab) * examples[i].responses[0].size()), 1e-3);
    for (size_t v = 1; v < outputs.size(); ++v) {
      const json& o = outputs[v][i];
      EXPECT_EQ(o["line"], i + 1) << variants[v];
      EXPECT_EQ(o["chosen_tokens"], paired["chosen_tokens"]) << variants[v];
      EXPECT_EQ(o["rejected_tokens"], paired["rejected_tokens"]) << variants[v];
      EXPECT_NEAR(o["chosen_logp"].get<double>(), chosen, 1e-5 * std::abs(chosen)) << variants[v];
      EXPECT_NEAR(o["rejected_logp"].get<double>(), rejected, 1e-5 * std::abs(rejected)) << variants[v];
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, CliModel, ::testing::Values("LlamaForCausalLM", "Qwen2ForCausalLM"));

// A byte-level BPE whose ids are the ASCII codes of printable characters
// (space = 32), so the test knows the ids of any text of letters and spaces.
// `extra_id` > 0 adds a special token with that id (a larger vocabulary).
std::string ascii_tokenizer(int extra_id = 0) {
  json vocab = json::object();
  for (int b = 0x21; b <= 0x7E; ++b) vocab[std::string(1, static_cast<char>(b))] = b;
  vocab["\xC4\xA0"] = 32;  // "Ġ", the byte-level form of a space
  json added = json::array();
  if (extra_id > 0) added.push_back({{"id", extra_id}, {"content", "<big>"}, {"special", true}});
  return json{{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}},
              {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}},
              {"decoder", {{"type", "ByteLevel"}}},
              {"added_tokens", added}}
      .dump();
}

std::string random_words(std::mt19937_64& rng, int max_chars) {
  std::string s(static_cast<size_t>(uniform(rng, 1, max_chars)), ' ');
  for (auto& c : s) c = uniform(rng, 0, 5) == 0 ? ' ' : static_cast<char>('a' + uniform(rng, 0, 25));
  s.front() = 'x';  // no leading or trailing space: the data layer may treat them specially
  s.back() = 'y';
  return s;
}

TEST(CliModel, RankedTextWithTheCopiedTokenizer) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  TempDir dir;
  fs::create_directories(dir / "tok");
  write_file(dir / "tok" / "tokenizer.json", ascii_tokenizer());
  write_file(dir / "config.json", tiny_config("LlamaForCausalLM", 128).dump());
  Result init = run_duet(dir, "init --config " + (dir / "config.json").string() + " --out " +
                                  (dir / "model").string() + " --std 0.5 --dtype bfloat16 --tokenizer " +
                                  (dir / "tok").string() + " --seed " + std::to_string(rng()));
  ASSERT_EQ(init.status, 0) << init.err;
  EXPECT_EQ(read_file(dir / "model" / "tokenizer.json"), read_file(dir / "tok" / "tokenizer.json"));

  // Ranked examples with 2 to 4 responses, as text; their ids are their bytes.
  std::vector<layout::TokenizedExample> examples;
  std::string jsonl;
  for (int i = 0; i < 12; ++i) {
    layout::TokenizedExample e;
    e.index = i;
    json line = {{"prompt", random_words(rng, 40)}, {"responses", json::array()}};
    const int k = uniform(rng, 2, 4);
    for (int r = 0; r < k; ++r) line["responses"].push_back(random_words(rng, 20) + std::to_string(r));
    auto bytes = [](const std::string& s) {
      std::vector<layout::TokenId> ids(s.begin(), s.end());
      return ids;
    };
    e.prompt = bytes(line["prompt"]);
    for (const auto& r : line["responses"]) e.responses.push_back(bytes(r));
    examples.push_back(std::move(e));
    jsonl += line.dump() + "\n";
  }
  write_file(dir / "data.jsonl", jsonl);
  Result r = run_duet(dir, "logprobs --layout shared --pack-tokens 200 --model " + (dir / "model").string() +
                               " --data " + (dir / "data.jsonl").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto out = parse_lines(r.out);
  ASSERT_EQ(out.size(), examples.size());
  const auto direct = engine_logps(dir / "model", examples);
  for (size_t i = 0; i < examples.size(); ++i) {
    SCOPED_TRACE("example " + std::to_string(i));
    const size_t k = examples[i].responses.size();
    ASSERT_EQ(out[i].contains("responses"), k > 2);
    EXPECT_NEAR(out[i]["chosen_logp"].get<double>(), direct[i][0], 1e-5 * std::abs(direct[i][0]));
    EXPECT_NEAR(out[i]["rejected_logp"].get<double>(), direct[i][1], 1e-5 * std::abs(direct[i][1]));
    if (k <= 2) continue;
    ASSERT_EQ(out[i]["responses"].size(), k);
    for (size_t j = 0; j < k; ++j) {
      EXPECT_EQ(out[i]["responses"][j]["tokens"], examples[i].responses[j].size());
      EXPECT_NEAR(out[i]["responses"][j]["logp"].get<double>(), direct[i][j], 1e-5 * std::abs(direct[i][j]));
    }
  }
}

}  // namespace
}  // namespace duet::cli::testing
