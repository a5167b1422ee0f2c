#include "cli/model_options.hpp"

#include <sstream>

#include "model/presets.hpp"
#include "util/error.hpp"

namespace duet::cli {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

void ModelSource::add_to(CLI::App& app, const std::string& config_help, const std::string& model_help) {
  std::string names;
  for (const auto& n : model::preset_names()) names += (names.empty() ? "" : ", ") + n;
  app.add_option("--arch", arch, "a published architecture: " + names);
  app.add_option("--config", config, config_help);
  app.add_option("--model", model, model_help);
}

model::ModelConfig ModelSource::load() const {
  if (int(!arch.empty()) + int(!config.empty()) + int(!model.empty()) != 1)
    fail("give exactly one of --arch (a preset), --config (a config.json) or --model (a model folder)");
  if (!arch.empty()) return model::preset_config(arch);
  return model::load_config(config.empty() ? model : config);
}

std::string ModelSource::label() const { return !arch.empty() ? arch : !config.empty() ? config : model; }

void LoraFlags::add_to(CLI::App& app) {
  app.add_flag("--use-peft", use_peft, "LoRA: train an adapter on the frozen model (reference = adapter off)");
  app.add_option("--lora-r", r, "LoRA rank (default 16)");
  app.add_option("--lora-alpha", alpha, "LoRA alpha (default 32)");
  app.add_option("--lora-dropout", dropout, "LoRA dropout (default 0.05, TRL's)");
  app.add_option("--lora-target-modules", target_modules, "adapted layers, comma-separated, or all-linear (default)");
}

std::optional<engine::LoraConfig> LoraFlags::config() const {
  if (!use_peft) return std::nullopt;
  engine::LoraConfig l;
  l.r = r, l.alpha = alpha, l.dropout = dropout;
  l.target_modules = engine::parse_target_modules(split_commas(target_modules));
  l.validate();
  return l;
}

}  // namespace duet::cli
