#pragma once
// Checkpoints: a Hugging Face folder that transformers loads unchanged
// (config.json, model.safetensors in the model's dtype, tokenizer files), plus
// what an exact resume needs (fp32 master weights and AdamW moments in
// optimizer.safetensors, the data position and loss state in
// trainer_state.json). Written into a temporary folder, then renamed.
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/parameters.hpp"
#include "layout/step_batcher.hpp"
#include "loss/loss.hpp"
#include "model/config.hpp"
#include "engine/adamw.hpp"
#include "engine/lora.hpp"

namespace duet::trainer {

struct TrainerState {
  int64_t global_step = 0;            // optimizer steps done
  layout::StepPosition position;      // of the next step
  loss::LossState loss_state;
  nlohmann::json options;             // the run's options, checked on resume
  nlohmann::json fingerprints = nlohmann::json::object();  // hashes of the inputs, checked on resume
  std::string product_algorithms;  // Engine::product_algorithms(): what a resume computes with
};

// A data-parallel run's optimizer: written as shard files by every rank
// (trainer/optimizer_shards.hpp) while the folder is still temporary.
struct ShardedOptimizer {
  int64_t adam_steps = 0;
  int shards = 1;
  // Collective: rank 0 calls it inside the temporary folder; it must return
  // once every rank has written its shard there.
  std::function<void(const std::filesystem::path& tmp)> write_shards;
};

struct CheckpointContent {
  const model::ModelConfig& config;
  const engine::ParameterSet<float>& params;
  engine::AdamW* optimizer = nullptr;          // null: a final model without training state
  const TrainerState* state = nullptr;
  std::filesystem::path tokenizer_source;  // folder whose tokenizer files are copied
  // LoRA: `params` is the adapter, written as PEFT's adapter files instead of a model.
  const engine::LoraConfig* lora = nullptr;
  std::string base_model;  // adapter_config.json's base_model_name_or_path
  const ShardedOptimizer* sharded = nullptr;  // instead of `optimizer` (data parallel)
};

// Writes `dir` atomically (dir.tmp, then rename; an existing dir is replaced).
void save_checkpoint(const std::filesystem::path& dir, const CheckpointContent& content);

// The output folder as a model folder (weights, tokenizer files, then config),
// each file written atomically.
void save_final_model(const std::filesystem::path& dir, const model::ModelConfig& config,
                      const engine::ParameterSet<float>& params, const std::filesystem::path& tokenizer_source);

// The output folder as PEFT's adapter folder (adapter_config.json,
// adapter_model.safetensors, tokenizer files), each file written atomically.
void save_final_adapter(const std::filesystem::path& dir, const engine::LoraConfig& lora,
                        const engine::ParameterSet<float>& adapter, const std::string& base_model,
                        const std::filesystem::path& tokenizer_source);

// `dir` (created) as a model folder: the base with the adapter merged (PEFT's
// merge_and_unload), in the config's dtype.
void save_merged_model(const std::filesystem::path& dir, const model::ModelConfig& config,
                       const engine::ParameterSet<float>& base, const engine::LoraConfig& lora,
                       const engine::ParameterSet<float>& adapter, const std::filesystem::path& tokenizer_source);

// `file` as indented JSON, through a temporary file and a rename.
void write_json_atomically(const std::filesystem::path& file, const nlohmann::json& value);

// trainer_state.json of `dir`, and how its optimizer state is stored.
struct SavedTraining {
  TrainerState state;
  int64_t adam_steps = 0;
  int optimizer_shards = 0;  // 0: optimizer.safetensors (one process); N: N shard files
};
SavedTraining read_training_state(const std::filesystem::path& dir);
// trainer_state.json's text alone (`origin` starts each error), as
// read_training_state parses it before gemm_algorithms.txt; fuzzed by
// fuzz/fuzz_trainer_state.cpp.
SavedTraining parse_training_state(std::string_view text, const std::string& origin);

// Restores master weights, AdamW moments and the state from `dir` (written
// by one process or by any number of ranks).
TrainerState load_training_state(const std::filesystem::path& dir, engine::ParameterSet<float>& params,
                                 engine::AdamW& optimizer);

// Copies tokenizer.json, tokenizer_config.json, special_tokens_map.json and
// generation_config.json from `from` into `to` when present.
void copy_tokenizer_files(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace duet::trainer
