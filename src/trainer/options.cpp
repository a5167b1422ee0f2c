#include "trainer/options.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include <fmt/ranges.h>

#include "model/config.hpp"
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "data/chat_template.hpp"
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

engine::LoraConfig TrainOptions::lora_config() const {
  engine::LoraConfig c;
  c.r = lora_r, c.alpha = lora_alpha, c.dropout = lora_dropout, c.use_rslora = use_rslora;
  if (!lora_target_modules.empty()) c.target_modules = engine::parse_target_modules(lora_target_modules);
  return c;
}

namespace {

// The --lora-* options given a value other than their default, as flags.
std::vector<std::string> lora_options_given(const TrainOptions& o) {
  const TrainOptions defaults;
  std::vector<std::string> given;
  if (o.lora_r != defaults.lora_r) given.emplace_back("--lora-r");
  if (o.lora_alpha != defaults.lora_alpha) given.emplace_back("--lora-alpha");
  if (o.lora_dropout != defaults.lora_dropout) given.emplace_back("--lora-dropout");
  if (!o.lora_target_modules.empty()) given.emplace_back("--lora-target-modules");
  if (o.use_rslora) given.emplace_back("--use-rslora");
  return given;
}

void validate_lora_options(const TrainOptions& o) {
  const std::vector<std::string> given = lora_options_given(o);
  if (!o.use_peft) {
    if (!given.empty()) fail("{} configures a LoRA adapter: add --use-peft, or leave it out", given.front());
    if (!o.adapter.empty()) fail("--adapter starts LoRA training from an adapter: add --use-peft");
    if (o.merge_adapter) fail("--merge-adapter merges a LoRA adapter: add --use-peft");
    return;
  }
  if (!o.ref_model.empty())
    fail("--ref-model with --use-peft: the reference is --model with the adapter switched off (as in TRL with a "
         "peft_config); leave --ref-model out");
  if (!o.adapter.empty() && !given.empty())
    fail("{} with --adapter: the adapter's adapter_config.json sets r, lora_alpha, lora_dropout, target_modules and "
         "use_rslora; leave {} out", given.front(), given.front());
  if (!o.adapter.empty()) return;  // its config is checked when read
  o.lora_config().validate();
}

}  // namespace

layout::BatcherOptions TrainOptions::batcher_options(int ranks) const {
  layout::BatcherOptions b;
  b.layout = layout;
  b.global_batch = batch_size;
  b.pack_tokens = pack_tokens;
  b.seed = seed;
  b.ranks = ranks;
  return b;
}

void TrainOptions::validate() const {
  if (model.empty()) fail("--model is required (a Hugging Face model folder)");
  ::duet::model::require_model_folder(model, "--model");
  if (data.empty()) fail("--data is required (a JSONL preference dataset)");
  if (out.empty()) fail("--out is required (the folder for checkpoints and metrics)");
  if (batch_size <= 0) fail("--batch-size must be positive (examples per optimizer step), got {}", batch_size);
  if (per_device_train_batch_size < 0) fail("--per-device-train-batch-size must be positive, got {}", per_device_train_batch_size);
  if (gradient_accumulation_steps <= 0)
    fail("--gradient-accumulation-steps must be positive, got {}", gradient_accumulation_steps);
  if (max_steps == 0 || max_steps < -1) fail("--max-steps must be positive, or -1 for --num-train-epochs; got {}", max_steps);
  if (max_steps == -1 && !(num_train_epochs > 0)) fail("give --max-steps or a positive --num-train-epochs");
  if (!(learning_rate >= 0)) fail("--learning-rate must be >= 0, got {}", learning_rate);
  if (!(warmup_ratio >= 0 && warmup_ratio <= 1)) fail("--warmup-ratio must be in [0, 1], got {}", warmup_ratio);
  if (warmup_steps < 0) fail("--warmup-steps must be >= 0, got {}", warmup_steps);
  if (!(weight_decay >= 0)) fail("--weight-decay must be >= 0, got {}", weight_decay);
  if (!(adam_beta1 >= 0 && adam_beta1 < 1)) fail("--adam-beta1 must be in [0, 1), got {}", adam_beta1);
  if (!(adam_beta2 >= 0 && adam_beta2 < 1)) fail("--adam-beta2 must be in [0, 1), got {}", adam_beta2);
  if (!(adam_epsilon > 0)) fail("--adam-epsilon must be > 0, got {}", adam_epsilon);
  if (!(eval_fraction >= 0 && eval_fraction < 1)) fail("--eval-fraction must be in [0, 1), got {}", eval_fraction);
  if (!eval_data.empty() && eval_fraction > 0) fail("give --eval-data or --eval-fraction, not both");
  if (pack_tokens < 0) fail("--pack-tokens must be >= 0, got {}", pack_tokens);
  if (max_length <= 1) fail("--max-length must be at least 2 (a prompt token and a response token), got {}", max_length);
  if (max_prompt_length == 0 || max_prompt_length < -1)
    fail("--max-prompt-length must be positive, or -1 for min(512, --max-length / 2); got {}", max_prompt_length);
  if (effective_max_prompt_length() >= max_length)
    fail("--max-prompt-length ({}) must be smaller than --max-length ({}) to leave room for the responses",
         effective_max_prompt_length(), max_length);
  if (logging_steps <= 0) fail("--logging-steps must be positive");
  if (zero_stage < 0 || zero_stage > 3)
    fail("--zero-stage {}: must be 0 (replicated), 1, 2 or 3 (DeepSpeed's ZeRO stages)", zero_stage);
  if (!(nccl_timeout > 0)) fail("--nccl-timeout {}: must be a positive number of seconds", nccl_timeout);
  if (save_steps < 0 || eval_steps < 0) fail("--save-steps and --eval-steps must be >= 0");
  if (save_total_limit < 0) fail("--save-total-limit must be >= 0 (0: keep every checkpoint)");
  if (threads < 0 || threads > 4096) fail("--threads must be in [0, 4096] (0: all cores), got {}", threads);
  if (precision == "bf16" && device == "cpu")
    fail("--bf16: the cpu engine computes in fp32 only; use --device cuda for bf16, or leave --bf16 out");
  if (precision == "fp32" && device == "cuda")
    fail("--fp32: the cuda engine computes in bf16 (with fp32 master weights and moments); use --device cpu for fp32");
  if (precompute_ref_log_probs && !ref_cache.empty())
    fail("give --precompute-ref-log-probs or --ref-cache, not both");
  if (precompute_ref_log_probs && !eval_data.empty())
    fail("--precompute-ref-log-probs scores --data only: hold out evaluation examples with --eval-fraction, "
         "or leave --precompute-ref-log-probs out");
  validate_lora_options(*this);
  loss::validate(loss);
}

namespace {

using nlohmann::json;

std::vector<std::string> loss_type_names() {
  std::vector<std::string> names;
  for (loss::LossType t : loss::all_loss_types()) names.emplace_back(loss::name(t));
  return names;
}

std::vector<std::string> chat_template_names() {
  std::vector<std::string> names = {"auto", "none"};
  for (auto n : data::builtin_template_names()) names.emplace_back(n);
  return names;
}

}  // namespace

const std::vector<OptionInfo>& train_options() {
  using T = OptionType;
  static const std::vector<OptionInfo> table = {
      {"model", T::path, "Hugging Face model folder (config.json, *.safetensors, tokenizer)", {}, {"model_name_or_path"}},
      {"data", T::path, "preference dataset (JSONL, .jsonl.gz or .jsonl.zst)", {}, {}},
      {"out", T::path, "output folder: metrics.jsonl, checkpoint-N/, the final model", {}, {"output_dir"}},
      {"tokenizer", T::path, "tokenizer.json or its folder (default: the model folder's)", {}, {}},
      {"ref_model", T::path, "reference model folder (default: the starting weights of --model)", {}, {}},
      {"ref_cache", T::path, "reference log-probs from duet ref (no reference model is loaded)", {}, {}},
      {"precompute_ref_log_probs", T::boolean, "score the reference once before training (OUT/ref_log_probs.jsonl), then free it", {}, {}},
      {"eval_data", T::path, "evaluation dataset", {}, {}},
      {"eval_fraction", T::real, "hold out this fraction of --data for evaluation (seeded), in [0, 1)", {}, {}},
      {"resume_from_checkpoint", T::path, "a checkpoint-N folder written by duet train", {}, {}},
      {"allow_option_changes", T::list, "on resume: options (or model, data) that may differ from the checkpoint's", {}, {}},
      {"overwrite_output_dir", T::boolean, "replace an earlier run in --out (its metrics, checkpoints, model)", {}, {}},
      {"layout", T::choice, "shared: prefix sharing; paired: the ordinary format", {"shared", "paired"}, {}},
      {"pack_tokens", T::integer, "row capacity for packing (0: one example per row)", {}, {}},
      {"max_length", T::integer, "longest prompt + response in tokens", {}, {}},
      {"max_prompt_length", T::integer, "longest prompt in tokens, keeping its end (-1: min(512, max_length / 2))", {}, {}},
      {"chat_template", T::choice, "chat template for conversational data", chat_template_names(), {}},
      {"on_error", T::choice, "fail: stop on a bad example; skip: drop it, counted", {"fail", "skip"}, {}},
      {"batch_size", T::integer, "global batch: examples per optimizer step", {}, {}},
      {"per_device_train_batch_size", T::integer, "TRL's: with --gradient-accumulation-steps, sets the global batch to their product", {}, {}},
      {"gradient_accumulation_steps", T::integer, "TRL's: see --per-device-train-batch-size", {}, {}},
      {"max_steps", T::integer, "optimizer steps (-1: from --num-train-epochs)", {}, {}},
      {"num_train_epochs", T::real, "epochs (when --max-steps is -1)", {}, {}},
      {"learning_rate", T::real, "peak learning rate", {}, {}},
      {"lr_scheduler_type", T::choice, "learning-rate schedule", {"constant", "constant_with_warmup", "linear", "cosine"}, {}},
      {"warmup_ratio", T::real, "warmup as a fraction of the steps, in [0, 1]", {}, {}},
      {"warmup_steps", T::integer, "warmup steps (> 0 overrides --warmup-ratio)", {}, {}},
      {"weight_decay", T::real, "AdamW decoupled weight decay (not on norms and biases)", {}, {}},
      {"adam_beta1", T::real, "AdamW beta1, in [0, 1)", {}, {}},
      {"adam_beta2", T::real, "AdamW beta2, in [0, 1)", {}, {}},
      {"adam_epsilon", T::real, "AdamW epsilon, > 0", {}, {}},
      {"max_grad_norm", T::real, "clip gradients to this global norm (<= 0: off)", {}, {}},
      {"seed", T::integer, "seed of the data order and split", {}, {}},
      {"loss_type", T::list, "loss, or a comma list of losses to combine (docs/losses.md)", loss_type_names(), {}},
      {"loss_weights", T::list, "comma list of weights for a combined --loss-type", {}, {}},
      {"beta", T::real, "the loss's beta", {}, {}},
      {"label_smoothing", T::real, "label smoothing (sigmoid, robust, ...)", {}, {}},
      {"rpo_alpha", T::real, "add rpo_alpha x NLL of chosen", {}, {}},
      {"simpo_gamma", T::real, "SimPO target margin", {}, {}},
      {"discopop_tau", T::real, "DiscoPOP temperature", {}, {}},
      {"logging_steps", T::integer, "log the mean of every N steps", {}, {}},
      {"save_steps", T::integer, "checkpoint every N steps (0: only at the end)", {}, {}},
      {"save_total_limit", T::integer, "keep only the newest N checkpoints (0: all)", {}, {}},
      {"eval_steps", T::integer, "evaluate every N steps (0: only at the end)", {}, {}},
      {"report_to", T::choice, "where metrics go besides metrics.jsonl", {"none", "tensorboard"}, {}},
      {"threads", T::integer, "CPU threads (0: all cores)", {}, {}},
      {"device", T::choice, "auto (default): cuda where a GPU it runs on is visible, else cpu; cpu: the fp32 reference engine; cuda: bf16 on the GPU", {"auto", "cpu", "cuda"}, {}},
      {"bf16", T::boolean, "compute in bf16 (the cuda engine)", {}, {}},
      {"fp32", T::boolean, "compute in fp32 (the cpu engine)", {}, {"tf32"}},
      {"gradient_checkpointing", T::boolean, "recompute activations in the backward: less memory, more time (cuda)", {}, {}},
      {"zero_stage", T::integer, "with several ranks: 0 replicates the optimizer; 1 shards fp32 master weights and AdamW moments, 2 also gradients, 3 also the working weights (DeepSpeed's stages)", {}, {}},
      {"nccl_timeout", T::real, "seconds a collective waits for the other ranks before the job is ended", {}, {"ddp_timeout"}},
      {"no_progress", T::boolean, "plain log lines instead of a progress bar", {}, {"disable_tqdm"}},
      {"use_peft", T::boolean, "train a LoRA adapter on the frozen --model (docs/lora.md)", {}, {}},
      {"lora_r", T::integer, "LoRA rank", {}, {}},
      {"lora_alpha", T::real, "LoRA alpha: the adapter is scaled by alpha / r (alpha / sqrt(r) with --use-rslora)", {}, {}},
      {"lora_dropout", T::real, "dropout on the adapter's input while training, in [0, 1)", {}, {}},
      {"lora_target_modules", T::list, "layers to adapt: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj or all-linear (default q_proj,v_proj)", {}, {}},
      {"use_rslora", T::boolean, "rank-stabilised LoRA: scale by alpha / sqrt(r)", {}, {}},
      {"adapter", T::path, "with --use-peft: start from this PEFT adapter folder (adapter_config.json, adapter_model.safetensors)", {}, {}},
      {"merge_adapter", T::boolean, "with --use-peft: also write OUT/merged, the model with the adapter merged", {}, {}},
  };
  return table;
}

const char* type_name(OptionType type) {
  switch (type) {
    case OptionType::path: return "PATH";
    case OptionType::text: return "TEXT";
    case OptionType::choice: return "CHOICE";
    case OptionType::integer: return "INT";
    case OptionType::real: return "FLOAT";
    case OptionType::boolean: return "BOOL";
    case OptionType::list: return "LIST";
  }
  return "?";
}

const std::vector<std::pair<std::string, std::string>>& trl_options_not_implemented() {
  static const std::vector<std::pair<std::string, std::string>> list = {
      {"fp16", "duet computes in fp32 (cpu) or bf16 (cuda), never fp16"},
      {"deepspeed", "duet shards by itself: give --zero-stage 1|2|3 and launch with mpirun, srun or torchrun"},
      {"fsdp", "duet shards by itself: give --zero-stage 3 and launch with mpirun, srun or torchrun"},
      {"lora_task_type", "duet's adapters are for causal language models (CAUSAL_LM) only"},
      {"lora_modules_to_save", "duet trains only the LoRA matrices of the target modules"},
      {"use_dora", "DoRA is not implemented: duet trains plain LoRA adapters"},
      {"load_in_4bit", "quantised base weights (QLoRA) are not implemented"},
      {"load_in_8bit", "quantised base weights (QLoRA) are not implemented"},
      {"push_to_hub", "duet writes a local model folder; upload it yourself"},
      {"hub_model_id", "duet writes a local model folder; upload it yourself"},
      {"torch_compile", "duet is C++; there is nothing to compile at run time"},
      {"optim", "duet's optimizer is AdamW (torch's adamw_torch) only"},
      {"max_completion_length", "give --max-length (prompt + response) and --max-prompt-length instead"},
      {"padding_free", "duet always packs without padding (--pack-tokens)"},
      {"sync_ref_model", "the reference model is fixed in duet"},
      {"generate_during_eval", "duet does not generate text"},
      {"use_logits_to_keep", "duet never computes logits outside the responses"},
      {"f_divergence_type", "only the reverse-KL DPO family is implemented"},
      {"dataloader_num_workers", "data preparation uses --threads"},
      {"eval_strategy", "give --eval-steps N (0: only at the end)"},
      {"save_strategy", "give --save-steps N (0: only at the end)"},
      {"logging_strategy", "give --logging-steps N"},
      {"lr_scheduler_kwargs", "the schedules take no extra arguments"},
      {"model_init_kwargs", "duet reads the model's config.json as it is"},
      {"ref_model_init_kwargs", "duet reads the model's config.json as it is"},
      {"dataset_num_proc", "data preparation uses --threads"},
      {"local_rank", "duet reads the rank from the launcher's environment (LOCAL_RANK, OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID)"},
  };
  return list;
}

json parse_option_text(const OptionInfo& option, const std::string& text, const std::string& flag) {
  const char* first = text.data();
  const char* last = text.data() + text.size();
  auto real = [&](const std::string& t) {
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(t.c_str(), &end);
    if (t.empty() || end != t.c_str() + t.size() || std::isspace(static_cast<unsigned char>(t.front())))
      fail("{}: '{}' is not a number", flag, t);
    if (!std::isfinite(v)) fail("{}: '{}' is not a finite number", flag, t);
    return v;
  };
  switch (option.type) {
    case OptionType::integer: {
      int64_t v = 0;
      const char* start = first != last && *first == '+' ? first + 1 : first;
      auto [end, err] = std::from_chars(start, last, v);
      if (err == std::errc::result_out_of_range) fail("{}: '{}' is out of range", flag, text);
      if (err != std::errc() || end != last || start == last) fail("{}: '{}' is not an integer", flag, text);
      return v;
    }
    case OptionType::real: return real(text);
    case OptionType::boolean: {
      if (text.empty() || text == "true" || text == "1") return true;
      if (text == "false" || text == "0") return false;
      fail("{}: '{}' is not true or false", flag, text);
    }
    case OptionType::list: {
      json list = json::array();
      size_t b = 0;
      for (size_t e;; b = e + 1) {
        e = text.find(',', b);
        const std::string item = text.substr(b, e == std::string::npos ? std::string::npos : e - b);
        if (option.key == "loss_weights") list.push_back(real(item));
        else list.push_back(item);
        if (e == std::string::npos) break;
      }
      return list;
    }
    case OptionType::path:
    case OptionType::text:
    case OptionType::choice: return text;
  }
  return text;
}

namespace {

json yaml_to_json(const YAML::Node& node, const std::string& where) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return nullptr;
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (const auto& item : node) a.push_back(yaml_to_json(item, where));
      return a;
    }
    case YAML::NodeType::Map: {
      json o = json::object();
      for (const auto& kv : node) o[kv.first.as<std::string>()] = yaml_to_json(kv.second, where);
      return o;
    }
    case YAML::NodeType::Scalar: {
      const std::string s = node.Scalar();
      if (node.Tag() == "!") return s;  // quoted: a string
      if (s == "true" || s == "True") return true;
      if (s == "false" || s == "False") return false;
      if (s == "null" || s == "~") return nullptr;
      // A YAML number is a JSON number (1e-6, 8, -1); anything else stays text.
      auto j = json::parse(s, nullptr, false);
      if (!j.is_discarded() && j.is_number()) return j;
      return s;
    }
  }
  return nullptr;
}

}  // namespace

json read_config_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) fail("{}: cannot open the config file", file.string());
  const std::string ext = file.extension().string();
  if (ext == ".yaml" || ext == ".yml") {
    try {
      return yaml_to_json(YAML::Load(in), file.string());
    } catch (const YAML::Exception& e) {
      fail("{}:{}: not valid YAML ({})", file.string(), e.mark.line + 1, e.msg);
    }
  }
  auto j = json::parse(in, nullptr, false);
  if (j.is_discarded()) fail("{}: not valid JSON (a .yaml or .yml file is read as YAML)", file.string());
  return j;
}

namespace {

const OptionInfo* find_option(const std::string& key) {
  for (const auto& o : train_options())
    if (o.key == key || std::find(o.aliases.begin(), o.aliases.end(), key) != o.aliases.end()) return &o;
  return nullptr;
}

// The JSON value has the option's type: integers are integers (not 2.5),
// numbers are numbers, booleans booleans, lists arrays (or one string).
void check_type(const OptionInfo& option, const std::string& key, const json& v, const std::string& origin) {
  bool ok = false;
  switch (option.type) {
    case OptionType::integer: ok = v.is_number_integer(); break;
    case OptionType::real: ok = v.is_number(); break;
    case OptionType::boolean: ok = v.is_boolean(); break;
    case OptionType::list: ok = v.is_array() || v.is_string() || (option.key == "loss_weights" && v.is_null()); break;
    default: ok = v.is_string(); break;
  }
  if (!ok) {
    const char* expected = option.type == OptionType::integer ? "an integer"
                           : option.type == OptionType::real  ? "a number"
                           : option.type == OptionType::boolean ? "true or false"
                           : option.type == OptionType::list    ? "a list"
                                                                : "a string";
    fail("{}: option '{}' must be {}, got {}", origin, key, expected, v.dump());
  }
  if (option.type == OptionType::choice &&
      std::find(option.choices.begin(), option.choices.end(), v.get<std::string>()) == option.choices.end())
    fail("{}: {} '{}' is not one of: {}", origin, key, v.get<std::string>(), fmt::format("{}", fmt::join(option.choices, ", ")));
}

}  // namespace

void apply_json(TrainOptions& o, const nlohmann::json& object, const std::string& origin) {
  if (!object.is_object()) fail("{}: expected an object of options", origin);
  std::vector<std::string> unknown, lacking;
  for (const auto& [key, value] : object.items()) {
    if (find_option(key)) continue;
    bool trl = false;
    for (const auto& [name, why] : trl_options_not_implemented())
      if (name == key) {
        lacking.push_back(fmt::format("{} ({})", key, why));
        trl = true;
      }
    if (!trl) unknown.push_back(key);
  }
  if (!lacking.empty())
    fail("{}: TRL's {} not implemented in duet: {}", origin, lacking.size() == 1 ? "option is" : "options are",
         fmt::format("{}", fmt::join(lacking, "; ")));
  if (!unknown.empty())
    fail("{}: unknown {} {}; duet train --help lists them all", origin, unknown.size() == 1 ? "option" : "options",
         fmt::format("{}", fmt::join(unknown, ", ")));
  nlohmann::json loss_part = nlohmann::json::object();
  for (const auto& item : object.items()) {
    // Not a structured binding: clang 14 (the fuzz build) cannot capture one in the lambdas below.
    const std::string& given_key = item.key();
    const nlohmann::json& value = item.value();
    const OptionInfo& info = *find_option(given_key);
    check_type(info, given_key, value, origin);
    const std::string& key = info.key;
    auto path = [&](std::filesystem::path& p) { p = value.get<std::string>(); };
    auto str = [&] { return value.get<std::string>(); };
    if (key == "model") path(o.model);
    else if (key == "data") path(o.data);
    else if (key == "out") path(o.out);
    else if (key == "tokenizer") path(o.tokenizer);
    else if (key == "ref_model") path(o.ref_model);
    else if (key == "ref_cache") path(o.ref_cache);
    else if (key == "precompute_ref_log_probs") o.precompute_ref_log_probs = value;
    else if (key == "eval_data") path(o.eval_data);
    else if (key == "resume_from_checkpoint") path(o.resume_from_checkpoint);
    else if (key == "allow_option_changes") {
      o.allow_option_changes = value.is_string() ? parse_option_text(info, str(), key).get<std::vector<std::string>>()
                                                 : value.get<std::vector<std::string>>();
      const auto known = run_option_names();
      for (const auto& name : o.allow_option_changes)
        if (std::find(known.begin(), known.end(), name) == known.end())
          fail("{}: allow_option_changes: '{}' is not an option a resume checks ({})", origin, name,
               fmt::format("{}", fmt::join(known, ", ")));
    } else if (key == "overwrite_output_dir") o.overwrite_output_dir = value;
    else if (key == "eval_fraction") o.eval_fraction = value;
    else if (key == "layout") o.layout = layout::parse_layout(str());
    else if (key == "pack_tokens") o.pack_tokens = value;
    else if (key == "max_length") o.max_length = value;
    else if (key == "max_prompt_length") o.max_prompt_length = value;
    else if (key == "chat_template") o.chat_template = str();
    else if (key == "on_error") o.skip_bad_examples = str() == "skip";
    else if (key == "batch_size") o.batch_size = value;
    else if (key == "per_device_train_batch_size") o.per_device_train_batch_size = value;
    else if (key == "gradient_accumulation_steps") o.gradient_accumulation_steps = value;
    else if (key == "max_steps") o.max_steps = value;
    else if (key == "num_train_epochs") o.num_train_epochs = value;
    else if (key == "learning_rate") o.learning_rate = value;
    else if (key == "lr_scheduler_type") o.lr_scheduler_type = *parse_schedule(str());
    else if (key == "warmup_ratio") o.warmup_ratio = value;
    else if (key == "warmup_steps") o.warmup_steps = value;
    else if (key == "weight_decay") o.weight_decay = value;
    else if (key == "adam_beta1") o.adam_beta1 = value;
    else if (key == "adam_beta2") o.adam_beta2 = value;
    else if (key == "adam_epsilon") o.adam_epsilon = value;
    else if (key == "max_grad_norm") o.max_grad_norm = value;
    else if (key == "seed") {
      if (value.get<int64_t>() < 0) fail("{}: seed must be >= 0, got {}", origin, value.dump());
      o.seed = value;
    }
    else if (key == "logging_steps") o.logging_steps = value;
    else if (key == "save_steps") o.save_steps = value;
    else if (key == "save_total_limit") o.save_total_limit = value;
    else if (key == "eval_steps") o.eval_steps = value;
    else if (key == "report_to") o.report_to = str();
    else if (key == "threads") o.threads = value;
    else if (key == "device") o.device = str();
    else if (key == "bf16") { if (value.get<bool>()) o.precision = "bf16"; }
    else if (key == "fp32") { if (value.get<bool>()) o.precision = "fp32"; }
    else if (key == "gradient_checkpointing") o.gradient_checkpointing = value;
    else if (key == "zero_stage") o.zero_stage = value;
    else if (key == "nccl_timeout") o.nccl_timeout = value;
    else if (key == "no_progress") o.progress = !value.get<bool>();
    else if (key == "use_peft") o.use_peft = value;
    else if (key == "lora_r") o.lora_r = value;
    else if (key == "lora_alpha") o.lora_alpha = value;
    else if (key == "lora_dropout") o.lora_dropout = value;
    else if (key == "lora_target_modules")
      o.lora_target_modules = value.is_string() ? parse_option_text(info, str(), key).get<std::vector<std::string>>()
                                                : value.get<std::vector<std::string>>();
    else if (key == "use_rslora") o.use_rslora = value;
    else if (key == "adapter") path(o.adapter);
    else if (key == "merge_adapter") o.merge_adapter = value;
    else loss_part[key] = value;  // loss_type, loss_weights, beta, ...
  }
  if (o.per_device_train_batch_size > 0) o.batch_size = o.per_device_train_batch_size * o.gradient_accumulation_steps;
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
      "gradient_checkpointing", "logging_steps", "save_steps", "save_total_limit", "eval_steps",
      "per_device_train_batch_size", "gradient_accumulation_steps", "precompute_ref_log_probs", "report_to", "precision",
      "adapter", "merge_adapter", "zero_stage", "nccl_timeout"};
  return std::find(std::begin(kNeutral), std::end(kNeutral), key) == std::end(kNeutral);
}

}  // namespace

std::vector<std::string> run_option_names() {
  std::vector<std::string> names = {"model", "data", "adapter"};  // the fingerprints
  const nlohmann::json all = to_json(TrainOptions{});
  for (const auto& [key, value] : all.items())
    if (alters_run(key)) names.push_back(key);
  return names;
}

std::vector<std::string> changed_run_options(const nlohmann::json& saved, const nlohmann::json& now,
                                             const std::vector<std::string>& allowed) {
  std::vector<std::string> changes;
  // An option newer than the checkpoint had its default value in the run that wrote it.
  const nlohmann::json defaults = to_json(TrainOptions{});
  for (const auto& [key, value] : now.items()) {
    if (!alters_run(key) || std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    const nlohmann::json before = saved.contains(key) ? saved[key] : defaults.value(key, nlohmann::json());
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
  j["per_device_train_batch_size"] = o.per_device_train_batch_size;
  j["gradient_accumulation_steps"] = o.gradient_accumulation_steps;
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
  j["precision"] = o.precision;
  j["precompute_ref_log_probs"] = o.precompute_ref_log_probs;
  j["report_to"] = o.report_to;
  j["threads"] = o.threads;
  j["gradient_checkpointing"] = o.gradient_checkpointing;
  j["use_peft"] = o.use_peft;
  j["lora_r"] = o.lora_r;
  j["lora_alpha"] = o.lora_alpha;
  j["lora_dropout"] = o.lora_dropout;
  j["lora_target_modules"] = o.lora_target_modules;
  j["use_rslora"] = o.use_rslora;
  j["adapter"] = o.adapter.string();
  j["merge_adapter"] = o.merge_adapter;
  j["zero_stage"] = o.zero_stage;
  j["nccl_timeout"] = o.nccl_timeout;
  const nlohmann::json loss_part = loss::to_json(o.loss);  // items() must not outlive its json
  for (const auto& [k, v] : loss_part.items()) j[k] = v;
  return j;
}

}  // namespace duet::trainer
