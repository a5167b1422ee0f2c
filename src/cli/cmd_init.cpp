// duet init: a model folder with random weights for a config.json, in the
// layout transformers' save_pretrained writes (config.json, model.safetensors,
// tokenizer files), so tests and demos need no downloaded checkpoint.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "engine/parameters.hpp"
#include "model/config.hpp"
#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"

namespace duet::cli {

namespace {

namespace fs = std::filesystem;

struct InitOptions {
  std::string config;
  std::string out;
  uint64_t seed = 0;
  double std = 0.02;
  std::string dtype;  // empty: the config's own dtype
  std::string tokenizer;
  bool force = false;
};

model::DType parse_dtype_flag(const std::string& name) {
  if (name == "bfloat16") return model::DType::BF16;
  if (name == "float16") return model::DType::F16;
  if (name == "float32") return model::DType::F32;
  fail("--dtype '{}': use bfloat16, float16 or float32", name);
}

// The files of a tokenizer to copy: its tokenizer.json and, next to it, the
// configs that carry special tokens and the chat template.
std::vector<fs::path> tokenizer_files(const fs::path& tokenizer_json) {
  std::vector<fs::path> files{tokenizer_json};
  for (const char* name : {"tokenizer_config.json", "special_tokens_map.json"}) {
    fs::path p = tokenizer_json.parent_path() / name;
    if (fs::is_regular_file(p)) files.push_back(p);
  }
  return files;
}

void prepare_out_dir(const fs::path& out, bool force) {
  std::error_code ec;
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec)) fail("--out {}: exists and is not a folder; pick a folder name", out.string());
    if (!fs::is_empty(out, ec) && !force)
      fail("--out {}: the folder is not empty; pick a new folder, or pass --force to overwrite the model files in it",
           out.string());
  }
  fs::create_directories(out, ec);
  if (ec) fail("--out {}: cannot create the folder ({})", out.string(), ec.message());
  // A stale shard index would win over the new model.safetensors when loading.
  fs::remove(out / "model.safetensors.index.json", ec);
}

int run_init(const InitOptions& o) {
  model::ModelConfig config = model::load_config(o.config);
  if (!o.dtype.empty()) config.dtype = parse_dtype_flag(o.dtype);
  if (!(o.std > 0) || !std::isfinite(o.std)) fail("--std must be positive and finite (got {})", o.std);

  std::vector<fs::path> tok_files;
  if (!o.tokenizer.empty()) {
    // Validate before writing anything: a tokenizer that loads and fits the model.
    const fs::path json = tok::find_tokenizer_json(o.tokenizer);
    const tok::Tokenizer tokenizer = tok::Tokenizer::load(json);
    if (tokenizer.vocab_size() > static_cast<size_t>(config.vocab_size))
      fail("{}: the tokenizer has {} tokens but {} has vocab_size {}; its ids would not fit the model: use the "
           "model's own tokenizer or raise vocab_size",
           json.string(), tokenizer.vocab_size(), o.config, config.vocab_size);
    tok_files = tokenizer_files(json);
  }

  const fs::path out = o.out;
  prepare_out_dir(out, o.force);
  engine::ParameterSet<float> params(config);
  engine::init_random(params, o.seed, o.std);
  engine::save_weights(params, out / "model.safetensors", config.dtype);
  for (const auto& f : tok_files) {
    std::error_code ec;
    fs::copy_file(f, out / f.filename(), fs::copy_options::overwrite_existing, ec);
    if (ec) fail("{}: cannot copy into {} ({})", f.string(), out.string(), ec.message());
  }
  // config.json last: a folder with a config is a complete model.
  model::save_config(config, out / "config.json");
  std::printf("%s: %zu parameters (%s), seed %llu, std %g%s\n", out.string().c_str(), params.values().size(),
              std::string(model::dtype_name(config.dtype)).c_str(), static_cast<unsigned long long>(o.seed), o.std,
              tok_files.empty() ? "" : ", tokenizer copied");
  return 0;
}

}  // namespace

Command add_init(CLI::App& app) {
  auto o = std::make_shared<InitOptions>();
  CLI::App* sub = app.add_subcommand("init", "Write a model folder with random weights for a config.json");
  sub->add_option("--config", o->config, "Hugging Face config.json (Llama, Qwen2, Mistral), or a folder holding one")
      ->required();
  sub->add_option("--out", o->out, "the model folder to write")->required();
  sub->add_option("--seed", o->seed, "random seed (default 0)");
  sub->add_option("--std", o->std, "standard deviation of matrices and embeddings (default 0.02)");
  sub->add_option("--dtype", o->dtype, "bfloat16, float16 or float32 (default: the config's dtype, else float32)");
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer.json, or a folder holding it, to copy into the model folder");
  sub->add_flag("--force", o->force, "write into a non-empty folder, replacing its model files");
  return {sub, [o] { return run_init(*o); }};
}

}  // namespace duet::cli
