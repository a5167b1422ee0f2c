#pragma once
// The trainer tests' fixtures: a scratch folder, a tiny random Llama written
// as a model folder, a learnable synthetic preference task, the options of a
// short run, and metrics.jsonl read back.
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/preference_task.hpp"
#include "common/seeds.hpp"
#include "engine/parameters.hpp"
#include "model/config.hpp"
#include "trainer/options.hpp"

namespace duet::trainer::testing {

namespace fs = std::filesystem;

using ::duet::test::fresh_seed;

// A scratch folder per test, removed afterwards.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("duet_train_" + std::to_string(fresh_seed()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

inline model::ModelConfig tiny_config() {
  model::ModelConfig c;
  c.architecture = model::Architecture::Llama;
  c.vocab_size = 64;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.max_position_embeddings = 512;
  c.dtype = model::DType::F32;
  return c;
}

inline void write_model(const fs::path& dir, uint64_t seed) {
  fs::create_directories(dir);
  auto config = tiny_config();
  model::save_config(config, dir / "config.json");
  engine::ParameterSet<float> p(config);
  engine::init_random(p, seed, 0.1);
  engine::save_weights(p, dir / "model.safetensors", config.dtype);
}

// Chosen responses use tokens 10..19, rejected ones 40..49, after a random
// prompt over the whole vocabulary: learnable, and testable on held-out data.
inline void write_task(const fs::path& file, int n, uint64_t seed) { test::write_preference_task(file, n, seed); }

inline std::vector<nlohmann::json> read_metrics(const fs::path& out, const char* key) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(out / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.contains(key)) rows.push_back(j);
  }
  return rows;
}

inline TrainOptions base_options(const fs::path& model, const fs::path& data, const fs::path& out) {
  TrainOptions o;
  o.model = model, o.data = data, o.out = out;
  o.batch_size = 8;
  o.learning_rate = 3e-3;
  o.lr_scheduler_type = Schedule::constant;
  o.loss.beta = 0.5;
  o.progress = false;
  o.seed = 7;
  return o;
}

// Scratch folder, a fresh seed (traced), a tiny random model and n task examples.
struct TrainingSetup {
  TempDir tmp;
  uint64_t seed = fresh_seed();
  fs::path model = tmp.path / "model", data = tmp.path / "data.jsonl";
  explicit TrainingSetup(int examples) {
    write_model(model, seed);
    write_task(data, examples, seed + 1);
  }
  std::string trace() const { return "seed " + std::to_string(seed); }
};

}  // namespace duet::trainer::testing
