// PEFT's adapter folder: written and read back unchanged (config and tensors),
// in PEFT's names and fields; adapters duet cannot apply are refused by name.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/lora_files.hpp"
#include "model/safetensors.hpp"
#include "tiny_models.hpp"
#include "util/error.hpp"

namespace duet::engine {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::fresh_seed;

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("duet_lora_" + std::to_string(fresh_seed()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
};

LoraConfig sample_config() {
  LoraConfig c;
  c.r = 4, c.alpha = 16, c.dropout = 0.1, c.use_rslora = true;
  c.target_modules = parse_target_modules({"v_proj", "q_proj", "down_proj"});
  return c;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void rewrite_config(const fs::path& dir, const std::function<void(json&)>& edit) {
  std::ifstream in(dir / kAdapterConfigFile);
  json j = json::parse(in);
  edit(j);
  std::ofstream(dir / kAdapterConfigFile) << j.dump();
}

TEST(LoraFiles, AdapterRoundTripsInPeftsFormat) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  TempDir tmp;
  const auto model = testing::tiny_config(model::Architecture::Llama);
  const LoraConfig lora = sample_config();
  ParameterSet<float> adapter(layout_adapter(model, lora));
  testing::randomize(adapter, seed);
  save_adapter(tmp.path, lora, adapter, "/models/base");

  const LoraConfig back = read_adapter_config(tmp.path);
  EXPECT_EQ(back.r, lora.r);
  EXPECT_EQ(back.alpha, lora.alpha);
  EXPECT_EQ(back.dropout, lora.dropout);
  EXPECT_EQ(back.use_rslora, lora.use_rslora);
  EXPECT_EQ(back.target_modules, (std::vector<std::string>{"q_proj", "v_proj", "down_proj"}));
  ParameterSet<float> loaded(layout_adapter(model, back));
  load_adapter_weights(tmp.path, loaded);
  EXPECT_TRUE(std::equal(adapter.values().begin(), adapter.values().end(), loaded.values().begin(),
                         loaded.values().end()));

  // PEFT's fields and tensor names, as peft's save_pretrained writes them.
  std::ifstream in(tmp.path / kAdapterConfigFile);
  const json j = json::parse(in);
  EXPECT_EQ(j["peft_type"], "LORA");
  EXPECT_EQ(j["task_type"], "CAUSAL_LM");
  EXPECT_EQ(j["r"], 4);
  EXPECT_TRUE(j["lora_alpha"].is_number_integer());
  EXPECT_EQ(j["base_model_name_or_path"], "/models/base");
  EXPECT_EQ(j["bias"], "none");
  const model::SafetensorsFile file(tmp.path / kAdapterWeightsFile);
  const auto* a = file.find("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight");
  const auto* b = file.find("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->shape, (model::Shape{4, model.hidden_size}));
  EXPECT_EQ(b->shape, (model::Shape{model.hidden_size, 4}));
  EXPECT_EQ(a->dtype, model::DType::F32);
  EXPECT_EQ(file.tensors().size(), 2u * 3u * static_cast<size_t>(model.num_hidden_layers));
  EXPECT_EQ(adapter_config_json(lora, "x")["lora_alpha"], 16);
}

TEST(LoraFiles, RefusesAdaptersDuetCannotApply) {
  TempDir tmp;
  const auto model = testing::tiny_config(model::Architecture::Llama);
  const LoraConfig lora = sample_config();
  ParameterSet<float> adapter(layout_adapter(model, lora));
  save_adapter(tmp.path, lora, adapter, "base");
  auto reload = [&] {
    const LoraConfig c = read_adapter_config(tmp.path);
    ParameterSet<float> p(layout_adapter(model, c));
    load_adapter_weights(tmp.path, p);
  };
  const json original = adapter_config_json(lora, "base");
  struct Edit {
    const char* key;
    json value;
    const char* expected;
  };
  const Edit edits[] = {{"use_dora", true, "use_dora"},
                        {"bias", "all", "bias"},
                        {"modules_to_save", json::array({"lm_head"}), "modules_to_save"},
                        {"rank_pattern", json{{"q_proj", 8}}, "rank_pattern"},
                        {"exclude_modules", json::array({"q_proj"}), "exclude_modules"},
                        {"use_qalora", true, "use_qalora"},
                        {"peft_type", "IA3", "peft_type"},
                        {"target_modules", ".*proj", "regular expression"},
                        {"target_modules", json::array({"embed_tokens"}), "embed_tokens"},
                        {"r", 0, "lora-r"},
                        {"r", 8, "shape"},
                        {"target_modules", json::array({"q_proj", "k_proj", "v_proj", "down_proj"}), "lacks tensor"},
                        {"target_modules", json::array({"q_proj"}), "is not part of"}};
  for (const Edit& e : edits) {
    SCOPED_TRACE(std::string(e.key) + " = " + e.value.dump());
    rewrite_config(tmp.path, [&](json& j) {
      j = original;
      j[e.key] = e.value;
    });
    EXPECT_NE(error_of(reload).find(e.expected), std::string::npos) << error_of(reload);
  }
  rewrite_config(tmp.path, [&](json& j) { j = original; });
  EXPECT_EQ(error_of(reload), "(no error)");
  fs::remove(tmp.path / kAdapterWeightsFile);
  EXPECT_NE(error_of(reload).find("no adapter_model.safetensors"), std::string::npos);
  EXPECT_NE(error_of([&] { read_adapter_config(tmp.path / "nowhere"); }).find("not a folder"), std::string::npos);
}

// PEFT matches target_modules entries as module paths or their dotted
// suffixes, and writes full paths when it resolves "all-linear" on a small
// model: every spelling of the same modules reads as those module types.
TEST(LoraFiles, ReadsPeftsModulePathsAsModuleTypes) {
  TempDir tmp;
  const auto model = testing::tiny_config(model::Architecture::Llama);
  ASSERT_GE(model.num_hidden_layers, 2);
  const LoraConfig lora = sample_config();  // q_proj, v_proj, down_proj
  ParameterSet<float> adapter(layout_adapter(model, lora));
  save_adapter(tmp.path, lora, adapter, "base");
  auto read_modules = [&](const json& targets) {
    rewrite_config(tmp.path, [&](json& j) { j["target_modules"] = targets; });
    const LoraConfig c = read_adapter_config(tmp.path);
    ParameterSet<float> p(layout_adapter(model, c));
    load_adapter_weights(tmp.path, p);
    return c.target_modules;
  };
  json full_paths = json::array();  // as peft writes them: one entry per layer and module
  for (int64_t layer = 0; layer < model.num_hidden_layers; ++layer)
    for (const std::string m : {"down_proj", "q_proj", "v_proj"}) full_paths.push_back(lora_module_path(layer, m));
  EXPECT_EQ(read_modules(full_paths), lora.target_modules);
  EXPECT_EQ(read_modules(json::array({"self_attn.q_proj", "layers.0.mlp.down_proj", "layers.1.mlp.down_proj",
                                      "v_proj", "model.layers.1.self_attn.q_proj"})),
            lora.target_modules);
  // A type named on some layers only is refused (peft would adapt those alone).
  const std::string partial = error_of([&] { read_modules(json::array({"q_proj", "v_proj", lora_module_path(0, "down_proj")})); });
  EXPECT_NE(partial.find("names down_proj on layers 0 of the model's"), std::string::npos) << partial;
  for (const char* bad : {"mlp.q_proj", "model.layers.x.mlp.down_proj", "model.layers.0.self_attn.down_proj",
                          "decoder.layers.0.mlp.down_proj", "lm_head"}) {
    SCOPED_TRACE(bad);
    EXPECT_NE(error_of([&] { read_modules(json::array({"q_proj", "v_proj", bad})); }).find(bad), std::string::npos);
  }
}

}  // namespace
}  // namespace duet::engine
