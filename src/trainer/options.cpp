#include "trainer/options.hpp"

#include <algorithm>
#include <iterator>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "util/error.hpp"

namespace duet::trainer {

std::optional<Schedule> parse_schedule(const std::string& name) {
  if (name == "constant") return Schedule::constant;
  if (name == "constant_with_warmup") return Schedule::constant_with_warmup;
  if (name == "linear") return Schedule::linear;
  if (name == "cosine") return Schedule::cosine;
  return std::nullopt;
}

const char* schedule_name(Schedule s) {
  switch (s) {
    case Schedule::constant: return "constant";
    case Schedule::constant_with_warmup: return "constant_with_warmup";
    case Schedule::linear: return "linear";
    case Schedule::cosine: return "cosine";
  }
  return "?";
}

void TrainOptions::validate() const {
  if (model.empty()) fail("--model is required (a Hugging Face model folder)");
  if (data.empty()) fail("--data is required (a JSONL preference dataset)");
  if (out.empty()) fail("--out is required (the folder for checkpoints and metrics)");
  if (batch_size <= 0) fail("--batch-size must be positive (examples per optimizer step), got {}", batch_size);
  if (max_steps <= 0 && !(num_train_epochs > 0)) fail("give --max-steps or a positive --num-train-epochs");
  if (!(learning_rate >= 0)) fail("--learning-rate must be >= 0, got {}", learning_rate);
  if (!(warmup_ratio >= 0 && warmup_ratio <= 1)) fail("--warmup-ratio must be in [0, 1], got {}", warmup_ratio);
  if (!(eval_fraction >= 0 && eval_fraction < 1)) fail("--eval-fraction must be in [0, 1), got {}", eval_fraction);
  if (!eval_data.empty() && eval_fraction > 0) fail("give --eval-data or --eval-fraction, not both");
  if (pack_tokens < 0) fail("--pack-tokens must be >= 0, got {}", pack_tokens);
  if (max_length <= 0 || max_prompt_length <= 0) fail("--max-length and --max-prompt-length must be positive");
  if (logging_steps <= 0) fail("--logging-steps must be positive");
  if (save_steps < 0 || eval_steps < 0) fail("--save-steps and --eval-steps must be >= 0");
  if (save_total_limit < 0) fail("--save-total-limit must be >= 0 (0: keep every checkpoint)");
  loss::validate(loss);
}

namespace {

template <typename V>
void take(const nlohmann::json& j, const char* key, V& into, const std::string& origin) {
  try {
    into = j.get<V>();
  } catch (const nlohmann::json::exception&) {
    fail("{}: option '{}' has the wrong type ({})", origin, key, j.type_name());
  }
}

}  // namespace

void apply_json(TrainOptions& o, const nlohmann::json& object, const std::string& origin) {
  if (!object.is_object()) fail("{}: expected a JSON object of options", origin);
  nlohmann::json loss_part = nlohmann::json::object();
  for (const auto& [key, value] : object.items()) {
    auto path = [&](std::filesystem::path& p) {
      std::string s;
      take(value, key.c_str(), s, origin);
      p = s;
    };
    if (key == "model") path(o.model);
    else if (key == "data") path(o.data);
    else if (key == "out" || key == "output_dir") path(o.out);
    else if (key == "tokenizer") path(o.tokenizer);
    else if (key == "ref_model") path(o.ref_model);
    else if (key == "ref_cache") path(o.ref_cache);
    else if (key == "eval_data") path(o.eval_data);
    else if (key == "resume_from_checkpoint") path(o.resume_from_checkpoint);
    else if (key == "allow_option_changes") {
      take(value, "allow_option_changes", o.allow_option_changes, origin);
      const auto known = run_option_names();
      for (const auto& name : o.allow_option_changes)
        if (std::find(known.begin(), known.end(), name) == known.end())
          fail("{}: allow_option_changes: '{}' is not an option a resume checks ({})", origin, name,
               fmt::format("{}", fmt::join(known, ", ")));
    } else if (key == "overwrite_output_dir") take(value, "overwrite_output_dir", o.overwrite_output_dir, origin);
    else if (key == "save_total_limit") take(value, "save_total_limit", o.save_total_limit, origin);
    else if (key == "eval_fraction") take(value, "eval_fraction", o.eval_fraction, origin);
    else if (key == "layout") {
      std::string s;
      take(value, "layout", s, origin);
      o.layout = layout::parse_layout(s);
    } else if (key == "pack_tokens") take(value, "pack_tokens", o.pack_tokens, origin);
    else if (key == "max_length") take(value, "max_length", o.max_length, origin);
    else if (key == "max_prompt_length") take(value, "max_prompt_length", o.max_prompt_length, origin);
    else if (key == "chat_template") take(value, "chat_template", o.chat_template, origin);
    else if (key == "on_error") {
      std::string s;
      take(value, "on_error", s, origin);
      if (s != "fail" && s != "skip") fail("{}: on_error must be fail or skip, got '{}'", origin, s);
      o.skip_bad_examples = s == "skip";
    }
    else if (key == "batch_size") take(value, "batch_size", o.batch_size, origin);
    else if (key == "max_steps") take(value, "max_steps", o.max_steps, origin);
    else if (key == "num_train_epochs") take(value, "num_train_epochs", o.num_train_epochs, origin);
    else if (key == "learning_rate") take(value, "learning_rate", o.learning_rate, origin);
    else if (key == "lr_scheduler_type") {
      std::string s;
      take(value, "lr_scheduler_type", s, origin);
      auto sched = parse_schedule(s);
      if (!sched) fail("{}: unknown lr_scheduler_type '{}' (constant, constant_with_warmup, linear, cosine)", origin, s);
      o.lr_scheduler_type = *sched;
    } else if (key == "warmup_ratio") take(value, "warmup_ratio", o.warmup_ratio, origin);
    else if (key == "warmup_steps") take(value, "warmup_steps", o.warmup_steps, origin);
    else if (key == "weight_decay") take(value, "weight_decay", o.weight_decay, origin);
    else if (key == "adam_beta1") take(value, "adam_beta1", o.adam_beta1, origin);
    else if (key == "adam_beta2") take(value, "adam_beta2", o.adam_beta2, origin);
    else if (key == "adam_epsilon") take(value, "adam_epsilon", o.adam_epsilon, origin);
    else if (key == "max_grad_norm") take(value, "max_grad_norm", o.max_grad_norm, origin);
    else if (key == "seed") take(value, "seed", o.seed, origin);
    else if (key == "logging_steps") take(value, "logging_steps", o.logging_steps, origin);
    else if (key == "save_steps") take(value, "save_steps", o.save_steps, origin);
    else if (key == "eval_steps") take(value, "eval_steps", o.eval_steps, origin);
    else if (key == "threads") take(value, "threads", o.threads, origin);
    else if (key == "device") take(value, "device", o.device, origin);
    else if (key == "gradient_checkpointing") take(value, "gradient_checkpointing", o.gradient_checkpointing, origin);
    else if (key == "loss_type" || key == "loss_weights" || key == "beta" || key == "label_smoothing" ||
             key == "rpo_alpha" || key == "simpo_gamma" || key == "discopop_tau")
      loss_part[key] = value;
    else
      fail("{}: unknown option '{}'", origin, key);
  }
  if (!loss_part.empty()) {
    nlohmann::json merged = loss::to_json(o.loss);
    for (const auto& [k, v] : loss_part.items()) merged[k] = v;
    o.loss = with_context(origin, [&] { return loss::config_from_json(merged); });
  }
}

namespace {

// Options that change nothing a resumed run computes: where things are (the
// model and data are compared by their fingerprints instead), threads,
// device, logging, evaluation and checkpoint cadence.
bool alters_run(const std::string& key) {
  static const char* const kNeutral[] = {
      "model", "data", "out", "tokenizer", "ref_cache", "eval_data", "resume_from_checkpoint",
      "overwrite_output_dir", "allow_option_changes", "layout", "pack_tokens", "on_error", "threads", "device",
      "gradient_checkpointing", "logging_steps", "save_steps", "save_total_limit", "eval_steps"};
  return std::find(std::begin(kNeutral), std::end(kNeutral), key) == std::end(kNeutral);
}

}  // namespace

std::vector<std::string> run_option_names() {
  std::vector<std::string> names = {"model", "data"};  // the fingerprints
  const nlohmann::json all = to_json(TrainOptions{});
  for (const auto& [key, value] : all.items())
    if (alters_run(key)) names.push_back(key);
  return names;
}

std::vector<std::string> changed_run_options(const nlohmann::json& saved, const nlohmann::json& now,
                                             const std::vector<std::string>& allowed) {
  std::vector<std::string> changes;
  for (const auto& [key, value] : now.items()) {
    if (!alters_run(key) || std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    const nlohmann::json before = saved.contains(key) ? saved[key] : nlohmann::json();
    if (before != value) changes.push_back(fmt::format("{}: {} -> {}", key, before.dump(), value.dump()));
  }
  return changes;
}

nlohmann::json to_json(const TrainOptions& o) {
  nlohmann::json j = nlohmann::json::object();
  j["model"] = o.model.string();
  j["data"] = o.data.string();
  j["out"] = o.out.string();
  j["tokenizer"] = o.tokenizer.string();
  j["ref_model"] = o.ref_model.string();
  j["ref_cache"] = o.ref_cache.string();
  j["eval_data"] = o.eval_data.string();
  j["eval_fraction"] = o.eval_fraction;
  j["layout"] = std::string(layout::layout_name(o.layout));
  j["pack_tokens"] = o.pack_tokens;
  j["max_length"] = o.max_length;
  j["max_prompt_length"] = o.max_prompt_length;
  j["chat_template"] = o.chat_template;
  j["on_error"] = o.skip_bad_examples ? "skip" : "fail";
  j["batch_size"] = o.batch_size;
  j["max_steps"] = o.max_steps;
  j["num_train_epochs"] = o.num_train_epochs;
  j["learning_rate"] = o.learning_rate;
  j["lr_scheduler_type"] = schedule_name(o.lr_scheduler_type);
  j["warmup_ratio"] = o.warmup_ratio;
  j["warmup_steps"] = o.warmup_steps;
  j["weight_decay"] = o.weight_decay;
  j["adam_beta1"] = o.adam_beta1;
  j["adam_beta2"] = o.adam_beta2;
  j["adam_epsilon"] = o.adam_epsilon;
  j["max_grad_norm"] = o.max_grad_norm;
  j["seed"] = o.seed;
  j["logging_steps"] = o.logging_steps;
  j["save_steps"] = o.save_steps;
  j["save_total_limit"] = o.save_total_limit;
  j["eval_steps"] = o.eval_steps;
  j["device"] = o.device;
  j["gradient_checkpointing"] = o.gradient_checkpointing;
  const nlohmann::json loss_part = loss::to_json(o.loss);  // items() must not outlive its json
  for (const auto& [k, v] : loss_part.items()) j[k] = v;
  return j;
}

}  // namespace duet::trainer
