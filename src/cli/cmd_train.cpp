// duet train: DPO-family preference tuning. Options use TRL's names in kebab
// case; a --config JSON file (snake_case keys) is applied first and flags
// given on the command line override it.
#include <fstream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "trainer/trainer.hpp"
#include "util/error.hpp"

namespace duet::cli {

namespace {

enum class Kind { text, integer, real, flag };

// Every option is captured as text and turned into a JSON value of its kind,
// so the file and the command line go through the same apply_json.
struct TrainFlags {
  std::string config;
  std::map<std::string, std::pair<Kind, std::string>> values;  // snake_key -> (kind, text)
  std::map<std::string, CLI::Option*> options;
};

nlohmann::json to_json_value(Kind kind, const std::string& text, const std::string& flag) {
  try {
    switch (kind) {
      case Kind::integer: return std::stoll(text);
      case Kind::real: return std::stod(text);
      case Kind::flag: return true;
      case Kind::text: return text;
    }
  } catch (const std::exception&) {
    fail("--{}: '{}' is not a number", flag, text);
  }
  return text;
}

std::string kebab(const std::string& snake) {
  std::string s = snake;
  for (char& c : s)
    if (c == '_') c = '-';
  return s;
}

int run_train(const TrainFlags& flags) {
  trainer::TrainOptions o;
  if (!flags.config.empty()) {
    std::ifstream in(flags.config);
    if (!in) fail("{}: cannot open the config file", flags.config);
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) fail("{}: not valid JSON", flags.config);
    trainer::apply_json(o, j, flags.config);
  }
  nlohmann::json given = nlohmann::json::object();
  for (const auto& [key, opt] : flags.options) {
    if (opt->count() == 0) continue;
    const auto& [kind, text] = flags.values.at(key);
    if (key == "no_progress") {
      o.progress = false;
      continue;
    }
    given[key] = to_json_value(kind, text, kebab(key));
  }
  auto split = [](const std::string& s) {  // comma lists on the command line
    nlohmann::json list = nlohmann::json::array();
    size_t b = 0;
    for (size_t e; (e = s.find(',', b)) != std::string::npos; b = e + 1) list.push_back(s.substr(b, e - b));
    list.push_back(s.substr(b));
    return list;
  };
  if (given.contains("allow_option_changes"))
    given["allow_option_changes"] = split(given["allow_option_changes"].get<std::string>());
  if (given.contains("loss_type")) {
    given["loss_type"] = split(given["loss_type"].get<std::string>());
    if (given.contains("loss_weights")) {
      nlohmann::json w = nlohmann::json::array();
      for (const auto& s : split(given["loss_weights"].get<std::string>())) w.push_back(std::stod(s.get<std::string>()));
      given["loss_weights"] = w;
    }
  }
  trainer::apply_json(o, given, "command line");
  o.validate();
  trainer::Trainer trainer(std::move(o));
  return trainer.run();
}

}  // namespace

Command add_train(CLI::App& app) {
  auto flags = std::make_shared<TrainFlags>();
  CLI::App* sub = app.add_subcommand("train", "Preference-tune a model (DPO and relatives) with prefix sharing and packing");
  sub->add_option("--config", flags->config, "JSON file of options (snake_case keys, as the flags)");
  auto add = [&](const std::string& key, Kind kind, const std::string& help) {
    auto& slot = flags->values[key];
    slot.first = kind;
    CLI::Option* opt = kind == Kind::flag ? sub->add_flag("--" + kebab(key), help)
                                          : sub->add_option("--" + kebab(key), slot.second, help);
    flags->options[key] = opt;
  };
  add("model", Kind::text, "Hugging Face model folder (config.json, *.safetensors, tokenizer)");
  add("data", Kind::text, "preference dataset (JSONL, .jsonl.gz or .jsonl.zst)");
  add("out", Kind::text, "output folder: metrics.jsonl, checkpoint-N/, the final model");
  add("tokenizer", Kind::text, "tokenizer.json or folder (default: the model folder)");
  add("ref_model", Kind::text, "reference model folder (default: --model)");
  add("ref_cache", Kind::text, "reference log-probs from duet ref (no reference model is loaded)");
  add("eval_data", Kind::text, "evaluation dataset");
  add("eval_fraction", Kind::real, "hold out this fraction of --data for evaluation (seeded)");
  add("resume_from_checkpoint", Kind::text, "a checkpoint-N folder written by duet train");
  add("allow_option_changes", Kind::text, "on resume: comma list of options (or model, data) that may differ from the checkpoint's");
  add("overwrite_output_dir", Kind::flag, "replace an earlier run in --out (its metrics, checkpoints, model)");
  add("layout", Kind::text, "paired | shared (prefix sharing, default)");
  add("pack_tokens", Kind::integer, "row capacity for packing (0: one example per row)");
  add("max_length", Kind::integer, "longest prompt+response in tokens (default 1024)");
  add("max_prompt_length", Kind::integer, "longest prompt in tokens (default 512)");
  add("chat_template", Kind::text, "auto | none | llama3 | llama2 | chatml");
  add("on_error", Kind::text, "fail (default) or skip: drop examples with problems, counted");
  add("batch_size", Kind::integer, "global batch: examples per optimizer step (default 8)");
  add("max_steps", Kind::integer, "optimizer steps (overrides --num-train-epochs)");
  add("num_train_epochs", Kind::real, "epochs (default 1)");
  add("learning_rate", Kind::real, "peak learning rate (default 1e-6)");
  add("lr_scheduler_type", Kind::text, "constant | constant_with_warmup | linear | cosine");
  add("warmup_ratio", Kind::real, "warmup as a fraction of the steps");
  add("warmup_steps", Kind::integer, "warmup steps (overrides --warmup-ratio)");
  add("weight_decay", Kind::real, "AdamW decoupled weight decay (not on norms and biases)");
  add("adam_beta1", Kind::real, "AdamW beta1");
  add("adam_beta2", Kind::real, "AdamW beta2");
  add("adam_epsilon", Kind::real, "AdamW epsilon");
  add("max_grad_norm", Kind::real, "clip gradients to this global norm (<= 0: off)");
  add("seed", Kind::integer, "seed of the data order and split");
  add("loss_type", Kind::text, "sigmoid (default), hinge, ipo, ..., or a comma list (see docs/losses.md)");
  add("loss_weights", Kind::text, "comma list of weights for a combined --loss-type");
  add("beta", Kind::real, "the loss's beta (default 0.1)");
  add("label_smoothing", Kind::real, "label smoothing (sigmoid, robust, ...)");
  add("rpo_alpha", Kind::real, "add rpo_alpha x NLL of chosen");
  add("simpo_gamma", Kind::real, "SimPO target margin");
  add("discopop_tau", Kind::real, "DiscoPOP temperature");
  add("logging_steps", Kind::integer, "log every N steps (default 1)");
  add("save_steps", Kind::integer, "checkpoint every N steps (0: only at the end)");
  add("save_total_limit", Kind::integer, "keep only the newest N checkpoints (0: all)");
  add("eval_steps", Kind::integer, "evaluate every N steps (0: only at the end)");
  add("threads", Kind::integer, "CPU threads for data preparation (0: all)");
  add("device", Kind::text, "cpu (the fp32 reference engine) or cuda");
  add("gradient_checkpointing", Kind::flag, "recompute activations in the backward: less memory, more time (cuda)");
  add("no_progress", Kind::flag, "plain log lines instead of a progress bar");
  return {sub, [flags] { return run_train(*flags); }};
}

}  // namespace duet::cli
