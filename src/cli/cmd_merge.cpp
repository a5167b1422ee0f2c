// duet merge: a PEFT LoRA adapter merged into its base model (W += scaling * B A,
// PEFT's merge_and_unload), written as a full Hugging Face model folder.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.hpp"
#include "engine/lora_files.hpp"
#include "trainer/checkpoint.hpp"
#include "util/error.hpp"

namespace duet::cli {

namespace {

namespace fs = std::filesystem;

struct MergeOptions {
  std::string model, adapter, out;
  bool force = false;
};

int run_merge(const MergeOptions& o) {
  model::require_model_folder(o.model, "--model");
  const engine::LoraConfig lora = engine::read_adapter_config(o.adapter);
  std::error_code ec;
  if (fs::exists(o.out, ec) && fs::equivalent(o.out, o.model, ec))
    fail("--out {} is --model: writing there would overwrite the base model; choose another folder", o.out);
  if (!o.force && fs::is_directory(o.out, ec) && !fs::is_empty(o.out, ec))
    fail("--out {} is not empty: choose a new folder, or give --force to replace its model files", o.out);
  const model::ModelConfig config = model::load_config(o.model);
  engine::ParameterSet<float> base(config), adapter(engine::layout_adapter(config, lora));
  engine::load_weights(base, o.model);
  engine::load_adapter_weights(o.adapter, adapter);
  trainer::save_merged_model(o.out, config, base, lora, adapter, o.model);
  std::fprintf(stderr, "duet merge: %s + %s -> %s\n", o.model.c_str(), o.adapter.c_str(), o.out.c_str());
  return 0;
}

}  // namespace

Command add_merge(CLI::App& app) {
  auto o = std::make_shared<MergeOptions>();
  CLI::App* sub = app.add_subcommand("merge", "Merge a PEFT LoRA adapter into its base model (a full model folder)");
  sub->add_option("--model", o->model, "the base model folder the adapter was trained on")->required();
  sub->add_option("--adapter", o->adapter, "PEFT adapter folder (adapter_config.json, adapter_model.safetensors)")
      ->required();
  sub->add_option("--out", o->out, "folder to write: config.json, model.safetensors, tokenizer files")->required();
  sub->add_flag("--force", o->force, "write into a non-empty --out (its config, weights and tokenizer files are replaced)");
  return {sub, [o] { return run_merge(*o); }};
}

}  // namespace duet::cli
