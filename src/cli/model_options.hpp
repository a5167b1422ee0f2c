#pragma once
// Options that duet bench and duet estimate-memory share: which model (a
// published architecture, a config.json or a model folder) and LoRA with
// PEFT's and TRL's names.
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "engine/lora.hpp"
#include "model/config.hpp"

namespace duet::cli {

struct ModelSource {
  std::string arch, config, model;
  void add_to(CLI::App& app, const std::string& config_help, const std::string& model_help);
  model::ModelConfig load() const;  // exactly one of the three, else one line
  std::string label() const;        // what was given
};

struct LoraFlags {
  bool use_peft = false;  // a frozen base, the adapter trained, the reference = adapter off
  int64_t r = 16;
  double alpha = 32, dropout = 0.05;
  std::string target_modules = "all-linear";
  void add_to(CLI::App& app);
  std::optional<engine::LoraConfig> config() const;  // validated; none without --use-peft
};

std::vector<std::string> split_commas(const std::string& s);

}  // namespace duet::cli
