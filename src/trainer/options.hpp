#pragma once
// Everything `duet train` is told, by TRL's names (kebab case on the command
// line, snake case in a --config JSON file).
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "data/truncation.hpp"
#include "engine/lora.hpp"
#include "layout/example.hpp"
#include "layout/step_batcher.hpp"
#include "loss/config.hpp"

namespace duet::trainer {

enum class Schedule { constant, constant_with_warmup, linear, cosine };
std::optional<Schedule> parse_schedule(const std::string& name);
const char* schedule_name(Schedule s);

struct TrainOptions {
  // Inputs and outputs.
  std::filesystem::path model, data, out;
  std::filesystem::path tokenizer;   // empty: the model folder's
  std::filesystem::path ref_model;   // empty: the starting weights (--model)
  std::filesystem::path ref_cache;   // from `duet ref`: no reference model is loaded
  std::filesystem::path eval_data;   // empty: --eval-fraction of --data, or no eval
  double eval_fraction = 0.0;
  std::filesystem::path resume_from_checkpoint;
  bool overwrite_output_dir = false;  // replace an earlier run in `out` (TRL's name)
  std::vector<std::string> allow_option_changes;  // on resume: options (and "model", "data") that may differ

  // Layout and data.
  layout::Layout layout = layout::Layout::shared;
  int64_t pack_tokens = 0;  // 0: one example per micro-batch row
  int64_t max_length = data::kDefaultMaxLength;  // the same defaults as every command (data/truncation.hpp)
  int64_t max_prompt_length = data::kAutoMaxPromptLength;  // min(512, max_length / 2), so that --max-length alone works
  int64_t effective_max_prompt_length() const {
    return max_prompt_length > 0 ? max_prompt_length : std::min(data::kDefaultMaxPromptLength, max_length / 2);
  }
  std::string chat_template = "auto";
  bool skip_bad_examples = false;  // --on-error skip: drop problem examples (counted) instead of failing

  // Optimisation.
  int64_t batch_size = 8;  // global batch in examples per optimizer step
  // TRL's spelling of the global batch: per_device_train_batch_size x
  // gradient_accumulation_steps x ranks (one rank today); > 0 sets batch_size.
  int64_t per_device_train_batch_size = 0;
  int64_t gradient_accumulation_steps = 1;
  int64_t max_steps = -1;  // > 0 overrides num_train_epochs
  double num_train_epochs = 1.0;
  double learning_rate = 1e-6;
  Schedule lr_scheduler_type = Schedule::linear;
  double warmup_ratio = 0.0;
  int64_t warmup_steps = 0;  // > 0 overrides warmup_ratio
  double weight_decay = 0.0;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-8;
  double max_grad_norm = 1.0;  // <= 0: no clipping
  uint64_t seed = 42;
  loss::LossConfig loss;

  // Bookkeeping.
  int64_t logging_steps = 1;
  int64_t save_steps = 0;  // 0: only at the end (and on SIGINT)
  int64_t save_total_limit = 0;  // keep the newest N checkpoints (0: all)
  int64_t eval_steps = 0;  // 0: only at the end
  int64_t threads = 0;  // 0: all cores
  std::string device = "auto";  // auto (cuda where it runs, else cpu: engine::resolve_device), cpu or cuda
  std::string precision = "auto";  // auto (the device's), bf16 (--bf16) or fp32 (--fp32)
  bool precompute_ref_log_probs = false;  // score the reference once before training, then free it
  std::string report_to = "none";  // none or tensorboard (OUT/runs/)
  bool gradient_checkpointing = false;  // recompute activations in the backward (memory for time)
  // Data parallelism (docs/distributed.md): the ranks come from the launcher
  // (mpirun, srun, torchrun); these only shape how they share the work.
  int64_t zero_stage = 0;         // DeepSpeed's ZeRO stage: 0 replicated, 1-3 sharded
  double nccl_timeout = 600;      // seconds a collective may wait for the other ranks
  bool progress = true;  // a progress bar when stderr is a terminal

  // LoRA, by TRL's / PEFT's names (docs/lora.md): an adapter is trained on the
  // frozen --model, and the reference is --model with the adapter off.
  bool use_peft = false;
  int64_t lora_r = 16;
  double lora_alpha = 32;
  double lora_dropout = 0.05;
  std::vector<std::string> lora_target_modules;  // empty: PEFT's default, q_proj and v_proj
  bool use_rslora = false;
  std::filesystem::path adapter;  // start from this PEFT adapter folder (its adapter_config.json)
  bool merge_adapter = false;     // also write OUT/merged: a model folder with the adapter merged
  // The adapter's config from the --lora-* options (not from --adapter's file).
  engine::LoraConfig lora_config() const;

  // How duet train cuts this run's steps into rows, over `ranks` ranks.
  layout::BatcherOptions batcher_options(int ranks) const;
  void validate() const;
};

// The options `duet train` takes, in one table: the command line, the config
// files and --help are made from it.
enum class OptionType { path, text, choice, integer, real, boolean, list };
struct OptionInfo {
  std::string key;                   // snake_case, as in a config file
  OptionType type;
  std::string help;
  std::vector<std::string> choices;  // OptionType::choice (and list items, when fixed)
  std::vector<std::string> aliases;  // TRL's other names for it
};
const std::vector<OptionInfo>& train_options();
const char* type_name(OptionType type);
// TRL (DPOConfig / TrainingArguments) options duet does not implement, with
// the reason, so that a TRL recipe gets a plain answer rather than "unknown".
const std::vector<std::pair<std::string, std::string>>& trl_options_not_implemented();

// The command line's text of an option as its JSON value, strictly: integers
// reject "2.5" and "4abc", numbers reject trailing text and NaN/inf, lists
// split at commas. `flag` names it in errors.
nlohmann::json parse_option_text(const OptionInfo& option, const std::string& text, const std::string& flag);

// A config file of options, JSON (.json) or YAML (.yaml, .yml), as a JSON object.
nlohmann::json read_config_file(const std::filesystem::path& file);

// Applies a JSON object of options (snake_case keys, or TRL's aliases) over
// `options`. Keys of the wrong type, unknown keys (all of them) and TRL
// options duet lacks are errors naming them.
void apply_json(TrainOptions& options, const nlohmann::json& object, const std::string& origin);
nlohmann::json to_json(const TrainOptions& options);

// On resume: the options of `saved` (to_json of the interrupted run) that
// `now` changes in a way that alters the training (not paths, threads,
// logging or checkpoint cadence), as "key: old -> new".
std::vector<std::string> changed_run_options(const nlohmann::json& saved, const nlohmann::json& now,
                                             const std::vector<std::string>& allowed);
// The names --allow-option-changes accepts.
std::vector<std::string> run_option_names();

}  // namespace duet::trainer
