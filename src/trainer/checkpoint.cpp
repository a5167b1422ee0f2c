#include "trainer/checkpoint.hpp"

#include <fstream>
#include <optional>

#include "engine/lora_files.hpp"
#include "model/safetensors.hpp"
#include "trainer/optimizer_shards.hpp"
#include "util/error.hpp"
#include "util/json_integer.hpp"
#include "util/read_file.hpp"

namespace duet::trainer {

namespace fs = std::filesystem;

namespace {

const char* kStateFile = "trainer_state.json";
const char* kOptimizerFile = "optimizer.safetensors";
// The CUDA engine's matrix-product algorithms (Engine::product_algorithms):
// hundreds of lines of hex, kept beside trainer_state.json rather than in it
// (checkpoints of the seventh session have them under "product_algorithms").
const char* kAlgorithmsFile = "gemm_algorithms.txt";

// The three fp32 tensors of each parameter in optimizer.safetensors.
constexpr const char* kGroups[] = {"master", "exp_avg", "exp_avg_sq"};

void write_json(const fs::path& file, const nlohmann::json& j) {
  std::ofstream out(file);
  out << j.dump(2) << "\n";
  out.close();  // a full disk shows when the buffer is flushed
  if (!out) fail("{}: cannot write; check free disk space", file.string());
}

// Writes into `tmp` and renames it to `dir`; a failure on the way removes
// `tmp` and turns a file-system error into one line naming the folder.
template <typename Body>
void write_folder_atomically(const fs::path& dir, Body&& body) {
  const fs::path tmp = dir.string() + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  try {
    fs::create_directories(tmp);
    body(tmp);
    // Replace an existing folder only once the new one is complete.
    if (fs::exists(dir)) {
      const fs::path old = dir.string() + ".old";
      fs::remove_all(old);
      fs::rename(dir, old);
      fs::rename(tmp, dir);
      fs::remove_all(old);
    } else {
      fs::rename(tmp, dir);
    }
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    fail("{}: cannot write the checkpoint ({})", dir.string(), e.code().message());
  } catch (const Error& e) {
    fs::remove_all(tmp, ec);
    fail("{}: checkpoint not written: {}", dir.string(), e.what());
  }
}

}  // namespace

void write_json_atomically(const fs::path& file, const nlohmann::json& value) {
  const fs::path tmp = file.string() + ".tmp";
  try {
    write_json(tmp, value);
    fs::rename(tmp, file);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

void copy_tokenizer_files(const fs::path& from, const fs::path& to) {
  for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                           "generation_config.json"}) {
    std::error_code ec;
    if (!fs::exists(from / name, ec)) continue;
    const fs::path tmp = to / (std::string(name) + ".tmp");  // copy, then rename: never half a file
    fs::copy_file(from / name, tmp, fs::copy_options::overwrite_existing);
    fs::rename(tmp, to / name);
  }
}

void save_checkpoint(const fs::path& dir, const CheckpointContent& c) {
  write_folder_atomically(dir, [&](const fs::path& tmp) {
    if (c.lora) {
      engine::save_adapter(tmp, *c.lora, c.params, c.base_model);
    } else {
      engine::save_weights(c.params, tmp / "model.safetensors", c.config.dtype);
    }
    if (!c.tokenizer_source.empty()) copy_tokenizer_files(c.tokenizer_source, tmp);
    if ((c.optimizer || c.sharded) && c.state) {
      nlohmann::json state = {{"global_step", c.state->global_step},
                              {"epoch", c.state->position.epoch},
                              {"step_in_epoch", c.state->position.step},
                              {"loss_state", loss::to_json(c.state->loss_state)},
                              {"options", c.state->options},
                              {"fingerprints", c.state->fingerprints}};
      if (!c.state->product_algorithms.empty()) {
        std::ofstream out(tmp / kAlgorithmsFile, std::ios::binary);
        out << c.state->product_algorithms;
        out.close();
        if (!out) fail("{}: cannot write {}", dir.string(), kAlgorithmsFile);
      }
      if (c.sharded) {
        c.sharded->write_shards(tmp);
        state["adam_steps"] = c.sharded->adam_steps;
        state["optimizer_shards"] = c.sharded->shards;
      } else {
        const engine::ParameterSet<float>* sets[] = {&c.params, &c.optimizer->first_moment(),
                                                     &c.optimizer->second_moment()};
        std::vector<model::TensorData> tensors;
        for (int g = 0; g < 3; ++g)
          for (const auto& s : c.params.slots())
            tensors.push_back({std::string(kGroups[g]) + "." + s.name, s.shape,
                               std::span<const float>(sets[g]->values().data() + s.offset, s.numel)});
        model::write_safetensors(tmp / kOptimizerFile, tensors, model::DType::F32);
        state["adam_steps"] = c.optimizer->steps();
      }
      write_json(tmp / kStateFile, state);
    }
    // Last: a folder with a config is complete (the rename makes an adapter checkpoint whole).
    if (!c.lora) model::save_config(c.config, tmp / "config.json");
  });
}

void save_final_model(const fs::path& dir, const model::ModelConfig& config, const engine::ParameterSet<float>& params,
                      const fs::path& tokenizer_source) {
  try {
    // Each file atomically, weights before config: a folder with a config.json is complete.
    engine::save_weights(params, dir / "model.safetensors", config.dtype);
    if (!tokenizer_source.empty()) copy_tokenizer_files(tokenizer_source, dir);
    model::save_config(config, dir / "config.json");
  } catch (const fs::filesystem_error& e) {
    fail("{}: cannot write the final model ({})", dir.string(), e.code().message());
  }
}

void save_final_adapter(const fs::path& dir, const engine::LoraConfig& lora, const engine::ParameterSet<float>& adapter,
                        const std::string& base_model, const fs::path& tokenizer_source) {
  try {
    engine::save_adapter(dir, lora, adapter, base_model);
    if (!tokenizer_source.empty()) copy_tokenizer_files(tokenizer_source, dir);
  } catch (const fs::filesystem_error& e) {
    fail("{}: cannot write the adapter ({})", dir.string(), e.code().message());
  }
}

void save_merged_model(const fs::path& dir, const model::ModelConfig& config, const engine::ParameterSet<float>& base,
                       const engine::LoraConfig& lora, const engine::ParameterSet<float>& adapter,
                       const fs::path& tokenizer_source) {
  engine::ParameterSet<float> merged = base;
  engine::merge_adapter(config, merged, lora, adapter);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("{}: cannot create the folder ({})", dir.string(), ec.message());
  save_final_model(dir, config, merged, tokenizer_source);
}

SavedTraining parse_training_state(std::string_view text, const std::string& origin) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) fail("{} is not valid JSON", origin);
  if (!j.is_object()) fail("{} is not a JSON object", origin);
  // Steps, positions and counts: integers >= 0 (a float beyond int64_t's range
  // was cast, undefined behaviour found by fuzzing).
  auto count = [&](const char* key, std::optional<int64_t> fallback = std::nullopt) -> int64_t {
    if (!j.contains(key) && fallback) return *fallback;
    if (!j.contains(key)) fail("{} is incomplete: no {}", origin, key);
    const auto v = json_integer(j[key]);
    if (!v || *v < 0) fail("{}: {} must be an integer >= 0, not {}", origin, key, j[key].dump());
    return *v;
  };
  SavedTraining saved;
  TrainerState& s = saved.state;
  s.global_step = count("global_step");
  s.position = {count("epoch"), count("step_in_epoch")};
  saved.adam_steps = count("adam_steps");
  const int64_t shards = count("optimizer_shards", 0);
  if (shards > INT32_MAX) fail("{}: optimizer_shards = {} is not a number of ranks", origin, shards);
  saved.optimizer_shards = static_cast<int>(shards);
  try {
    s.loss_state = loss::state_from_json(j.at("loss_state"));
    s.options = j.value("options", nlohmann::json::object());
    s.fingerprints = j.value("fingerprints", nlohmann::json::object());
    s.product_algorithms = j.value("product_algorithms", std::string());
  } catch (const nlohmann::json::exception& e) {
    fail("{} is incomplete: {}", origin, e.what());
  }
  return saved;
}

SavedTraining read_training_state(const fs::path& dir) {
  return with_context(dir.string(), [&] {
    const auto text = read_file(dir / kStateFile);
    if (!text) fail("no {} here: not a duet training checkpoint (resume needs one written by duet train)", kStateFile);
    SavedTraining saved = parse_training_state(*text, kStateFile);
    if (auto algorithms = read_file(dir / kAlgorithmsFile)) saved.state.product_algorithms = std::move(*algorithms);
    return saved;
  });
}

TrainerState load_training_state(const fs::path& dir, engine::ParameterSet<float>& params, engine::AdamW& optimizer) {
  SavedTraining saved = read_training_state(dir);
  optimizer.set_steps(saved.adam_steps);
  read_optimizer_range(dir, saved.optimizer_shards, params.slots(),
                       {0, params.values(), optimizer.first_moment().values(), optimizer.second_moment().values()});
  return std::move(saved.state);
}

}  // namespace duet::trainer
