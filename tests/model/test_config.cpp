// config.json parsing for the three families (texts modelled on the released
// Hugging Face configs), the writer, and every rejection.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "model/config.hpp"
#include "model/presets.hpp"
#include "util/error.hpp"

namespace duet::model {
namespace {

using nlohmann::json;

constexpr const char* kLlama31_8B = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
  "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.42.3", "use_cache": true, "vocab_size": 128256})";

constexpr const char* kLlama2_7B = R"({
  "architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
  "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
  "intermediate_size": 11008, "max_position_embeddings": 4096, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
  "pad_token_id": -1, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": null,
  "tie_word_embeddings": false, "torch_dtype": "float16", "use_cache": true, "vocab_size": 32000})";

constexpr const char* kQwen25_05B = R"({
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
  "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 21,
  "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24,
  "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
  "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.1", "use_cache": true, "use_sliding_window": false,
  "vocab_size": 151936})";

constexpr const char* kMistral7B = R"({
  "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
  "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
  "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "use_cache": true, "vocab_size": 32000})";

// Mistral-Nemo: head_dim (128) differs from hidden_size / heads (160).
constexpr const char* kMistralNemo = R"({
  "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
  "head_dim": 128, "hidden_act": "silu", "hidden_size": 5120, "intermediate_size": 14336,
  "max_position_embeddings": 1024000, "model_type": "mistral", "num_attention_heads": 32,
  "num_hidden_layers": 40, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
  "rope_theta": 1000000.0, "sliding_window": null, "tie_word_embeddings": false,
  "torch_dtype": "bfloat16", "vocab_size": 131072})";

// transformers 5 style: rope_parameters carries the theta, "dtype" replaces torch_dtype.
constexpr const char* kLlama32_1B_v5 = R"({
  "architectures": ["LlamaForCausalLM"], "bos_token_id": 128000, "dtype": "bfloat16",
  "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048,
  "intermediate_size": 8192, "max_position_embeddings": 131072, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05,
  "rope_parameters": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                      "original_max_position_embeddings": 8192, "rope_theta": 500000.0,
                      "rope_type": "llama3"},
  "tie_word_embeddings": true, "vocab_size": 128256})";

ModelConfig parse(const char* text) { return parse_config(json::parse(text), "config.json"); }

// The parse must fail with a duet::Error whose message contains every fragment.
void expect_error(const json& j, std::initializer_list<std::string> fragments) {
  try {
    parse_config(j, "config.json");
    ADD_FAILURE() << "accepted: " << j.dump();
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_TRUE(message.starts_with("config.json: ")) << message;
    for (const auto& f : fragments) EXPECT_NE(message.find(f), std::string::npos) << message;
  }
}

json with(const char* base, const json& patch) {
  json j = json::parse(base);
  j.merge_patch(patch);
  return j;
}

TEST(Config, Llama31WithLlama3RopeScaling) {
  const auto c = parse(kLlama31_8B);
  EXPECT_EQ(c.architecture, Architecture::Llama);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.intermediate_size, 14336);
  EXPECT_EQ(c.num_hidden_layers, 32);
  EXPECT_EQ(c.num_attention_heads, 32);
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeType::Llama3);
  EXPECT_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.has_qkv_bias());
  EXPECT_FALSE(c.has_o_bias());
  EXPECT_EQ(c.attention_window(), std::nullopt);
  EXPECT_EQ(c.dtype, DType::BF16);
  EXPECT_EQ(c.bos_token_id, 128000);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(c.pad_token_id, std::nullopt);
  EXPECT_EQ(c.q_size(), 4096);
  EXPECT_EQ(c.kv_size(), 1024);
}

TEST(Config, Llama2DefaultsAndLegacyPad) {
  const auto c = parse(kLlama2_7B);
  EXPECT_EQ(c.rope_theta, 10000.0);  // absent: transformers' default
  EXPECT_EQ(c.rope_scaling.type, RopeType::Default);
  EXPECT_EQ(c.num_key_value_heads, 32);
  EXPECT_EQ(c.dtype, DType::F16);
  EXPECT_EQ(c.pad_token_id, std::nullopt);  // -1 means none
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{2});
  EXPECT_FALSE(c.eos_is_list);
  // num_key_value_heads absent: every head has its own keys and values.
  auto j = json::parse(kLlama2_7B);
  j.erase("num_key_value_heads");
  EXPECT_EQ(parse_config(j, "config.json").num_key_value_heads, 32);
}

TEST(Config, Qwen2WithTiedEmbeddings) {
  const auto c = parse(kQwen25_05B);
  EXPECT_EQ(c.architecture, Architecture::Qwen2);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.has_qkv_bias());
  EXPECT_FALSE(c.has_o_bias());
  EXPECT_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.sliding_window, 32768);
  EXPECT_EQ(c.attention_window(), std::nullopt);  // use_sliding_window is false
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{151645});
  // attention_bias does not switch Qwen2's fixed bias layout.
  EXPECT_FALSE(parse_config(with(kQwen25_05B, {{"attention_bias", true}}), "c").has_o_bias());
}

TEST(Config, MistralSlidingWindowAndExplicitHeadDim) {
  const auto c = parse(kMistral7B);
  EXPECT_EQ(c.architecture, Architecture::Mistral);
  EXPECT_EQ(c.attention_window(), 4096);
  EXPECT_FALSE(c.has_qkv_bias());
  EXPECT_FALSE(c.has_o_bias());
  const auto nemo = parse(kMistralNemo);
  EXPECT_EQ(nemo.head_dim, 128);
  EXPECT_EQ(nemo.q_size(), 4096);
  EXPECT_EQ(nemo.attention_window(), std::nullopt);
}

TEST(Config, TransformersV5RopeParametersAndDtype) {
  const auto c = parse(kLlama32_1B_v5);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeType::Llama3);
  EXPECT_EQ(c.rope_scaling.factor, 32.0);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.dtype, DType::BF16);
  EXPECT_TRUE(c.tie_word_embeddings);
  // rope_type "default" means no scaling.
  const auto d = parse_config(
      with(kLlama32_1B_v5, {{"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 7.0},
                                                  {"factor", nullptr}, {"low_freq_factor", nullptr},
                                                  {"high_freq_factor", nullptr},
                                                  {"original_max_position_embeddings", nullptr}}}}),
      "c");
  EXPECT_EQ(d.rope_scaling.type, RopeType::Default);
  EXPECT_EQ(d.rope_theta, 7.0);
}

TEST(Config, LinearRopeScalingAndLegacyTypeKey) {
  const auto c = parse_config(
      with(kLlama2_7B, {{"rope_scaling", {{"type", "linear"}, {"factor", 4.0}}}}), "c");
  EXPECT_EQ(c.rope_scaling.type, RopeType::Linear);
  EXPECT_EQ(c.rope_scaling.factor, 4.0);
}

TEST(Config, LlamaAttentionBias) {
  const auto c = parse_config(with(kLlama2_7B, {{"attention_bias", true}}), "c");
  EXPECT_TRUE(c.has_qkv_bias());
  EXPECT_TRUE(c.has_o_bias());
}

TEST(Config, ArchitectureFromModelTypeAlone) {
  auto j = json::parse(kMistral7B);
  j.erase("architectures");
  EXPECT_EQ(parse_config(j, "c").architecture, Architecture::Mistral);
}

TEST(Config, WriterRoundTripsTheReleasedConfigs) {
  for (const char* text :
       {kLlama31_8B, kLlama2_7B, kQwen25_05B, kMistral7B, kMistralNemo, kLlama32_1B_v5}) {
    const auto c = parse(text);
    const auto written = to_json(c);
    EXPECT_EQ(parse_config(json::parse(written.dump()), "written"), c) << written.dump();
    EXPECT_EQ(written["architectures"][0], json::parse(text)["architectures"][0]);
  }
}

// Fields transformers derives or defaults are left out, so it derives them the
// same way it did for the original file.
TEST(Config, WriterLeavesDerivedAndAbsentFieldsOut) {
  const auto llama2 = to_json(parse(kLlama2_7B));
  EXPECT_FALSE(llama2.contains("head_dim"));
  EXPECT_FALSE(llama2.contains("pad_token_id"));  // -1 meant none
  EXPECT_EQ(llama2["eos_token_id"], 2);
  EXPECT_EQ(llama2["rope_scaling"], nullptr);
  const auto nemo = to_json(parse(kMistralNemo));
  EXPECT_EQ(nemo["head_dim"], 128);
  EXPECT_EQ(nemo["sliding_window"], nullptr);
  auto no_ids = json::parse(kMistral7B);
  no_ids.erase("bos_token_id");
  no_ids.erase("eos_token_id");
  const auto written = to_json(parse_config(no_ids, "c"));
  EXPECT_FALSE(written.contains("bos_token_id"));
  EXPECT_FALSE(written.contains("eos_token_id"));
  const auto llama31 = to_json(parse(kLlama31_8B));
  EXPECT_EQ(llama31["eos_token_id"], json::parse("[128001, 128008, 128009]"));
  EXPECT_EQ(llama31["rope_scaling"]["rope_type"], "llama3");
  EXPECT_EQ(llama31["dtype"], "bfloat16");
  EXPECT_EQ(to_json(parse(kQwen25_05B))["use_sliding_window"], false);
}

TEST(Config, WriterRoundTripsRandomConfigs) {
  DUET_SEEDED_RNG(rng);
  test::TempDir dir;
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  for (int i = 0; i < 200; ++i) {
    ModelConfig c;
    c.architecture = static_cast<Architecture>(pick(0, 2));
    c.vocab_size = pick(1, 300000);
    c.num_key_value_heads = pick(1, 8);
    c.num_attention_heads = c.num_key_value_heads * pick(1, 8);
    c.head_dim = 2 * pick(1, 128);
    c.hidden_size = pick(1, 8192);
    c.intermediate_size = pick(1, 30000);
    c.num_hidden_layers = pick(1, 100);
    c.rms_norm_eps = std::ldexp(static_cast<double>(pick(1, 1 << 20)), -static_cast<int>(pick(20, 45)));
    c.rope_theta = static_cast<double>(pick(1, 10000000)) / static_cast<double>(pick(1, 7));
    c.max_position_embeddings = pick(1, 1 << 20);
    c.tie_word_embeddings = pick(0, 1);
    c.dtype = std::array{DType::BF16, DType::F16, DType::F32}[pick(0, 2)];
    if (c.architecture == Architecture::Llama) c.attention_bias = pick(0, 1);
    if (c.architecture != Architecture::Llama && pick(0, 1)) c.sliding_window = pick(1, 100000);
    switch (pick(0, 2)) {
      case 0: break;
      case 1: c.rope_scaling = {RopeType::Linear, 0.25 * static_cast<double>(pick(1, 64)), 0, 0, 0}; break;
      default:
        c.rope_scaling = {RopeType::Llama3, static_cast<double>(pick(1, 64)), 0.5 * static_cast<double>(pick(1, 4)),
                          3.0 * static_cast<double>(pick(1, 4)), pick(1, 65536)};
    }
    if (pick(0, 1)) c.bos_token_id = pick(0, c.vocab_size - 1);
    if (pick(0, 1)) c.pad_token_id = pick(0, c.vocab_size - 1);
    for (int64_t n = pick(0, 3); n > 0; --n) c.eos_token_ids.push_back(pick(0, c.vocab_size - 1));
    c.eos_is_list = c.eos_token_ids.size() > 1 || (c.eos_token_ids.size() == 1 && pick(0, 1));
    SCOPED_TRACE(to_json(c).dump());
    EXPECT_EQ(parse_config(json::parse(to_json(c).dump()), "written"), c);
    save_config(c, dir / "config.json");
    EXPECT_EQ(load_config(dir.path()), c);  // a folder means its config.json
    if (HasFailure()) return;
  }
}

TEST(Config, RejectsUnsupportedArchitectures) {
  expect_error(with(kLlama31_8B, {{"architectures", json::array({"GPT2LMHeadModel"})}, {"model_type", "gpt2"}}),
               {"GPT2LMHeadModel", "LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM"});
  expect_error(with(kLlama31_8B, {{"architectures", json::array({"MixtralForCausalLM"})}}), {"MixtralForCausalLM"});
  expect_error(with(kLlama31_8B, {{"architectures", json::array({"LlamaForCausalLM", "Extra"})}}), {"exactly one"});
  expect_error(with(kLlama31_8B, {{"model_type", "mistral"}}), {"model_type 'mistral'", "llama"});
  expect_error(with(kLlama31_8B, {{"architectures", nullptr}, {"model_type", "gemma"}}), {"gemma"});
  expect_error(with(kLlama31_8B, {{"architectures", nullptr}, {"model_type", nullptr}}),
               {"architectures"});
  expect_error(json::array(), {"not a JSON object"});
}

TEST(Config, RejectsBadSizes) {
  expect_error(with(kLlama31_8B, {{"hidden_size", nullptr}}), {"'hidden_size'", "missing"});
  expect_error(with(kLlama31_8B, {{"vocab_size", nullptr}}), {"'vocab_size'", "missing"});
  expect_error(with(kLlama31_8B, {{"max_position_embeddings", nullptr}}), {"max_position_embeddings"});
  expect_error(with(kLlama31_8B, {{"hidden_size", 0}}), {"'hidden_size'", "positive"});
  expect_error(with(kLlama31_8B, {{"intermediate_size", -5}}), {"'intermediate_size'", "-5"});
  expect_error(with(kLlama31_8B, {{"num_hidden_layers", 0}}), {"num_hidden_layers"});
  expect_error(with(kLlama31_8B, {{"num_key_value_heads", 0}}), {"num_key_value_heads"});
  expect_error(with(kLlama31_8B, {{"num_key_value_heads", 5}}),
               {"'num_attention_heads' 32", "'num_key_value_heads' 5"});
  expect_error(with(kLlama31_8B, {{"num_attention_heads", 30}, {"num_key_value_heads", 30}}),
               {"4096", "30", "head_dim"});
  expect_error(with(kLlama31_8B, {{"head_dim", 127}}), {"'head_dim' 127", "even"});
  expect_error(with(kLlama31_8B, {{"hidden_size", "4096"}}), {"'hidden_size'", "integer", "\"4096\""});
  expect_error(with(kLlama31_8B, {{"hidden_size", 4096.5}}), {"'hidden_size'", "integer"});
  expect_error(with(kLlama31_8B, {{"rms_norm_eps", 0}}), {"rms_norm_eps"});
  expect_error(with(kLlama31_8B, {{"rms_norm_eps", "tiny"}}), {"rms_norm_eps", "number"});
  expect_error(with(kLlama31_8B, {{"rope_theta", -1.0}}), {"rope_theta"});
  expect_error(with(kLlama31_8B, {{"tie_word_embeddings", "yes"}}), {"tie_word_embeddings"});
  expect_error(with(kMistral7B, {{"sliding_window", 0}}), {"sliding_window"});
  // An integral float is accepted for an integer field.
  EXPECT_EQ(parse_config(with(kLlama31_8B, {{"hidden_size", 4096.0}}), "c").hidden_size, 4096);
}

TEST(Config, RejectsUnsupportedRope) {
  expect_error(with(kLlama31_8B, {{"rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}}}),
               {"'yarn'", "llama3", "linear"});
  // A whole replacement (merge_patch would keep rope_type "llama3", which wins over "type").
  auto replaced = json::parse(kLlama31_8B);
  replaced["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  expect_error(replaced, {"'dynamic'"});
  expect_error(with(kLlama31_8B, {{"rope_scaling", {{"rope_type", nullptr}}}}), {"rope_type"});
  expect_error(with(kLlama31_8B, {{"rope_scaling", {{"low_freq_factor", nullptr}}}}),
               {"'rope_scaling.low_freq_factor'", "missing"});
  expect_error(with(kLlama31_8B, {{"rope_scaling", {{"original_max_position_embeddings", nullptr}}}}),
               {"original_max_position_embeddings"});
  expect_error(with(kLlama31_8B, {{"rope_scaling", {{"high_freq_factor", 1.0}}}}),
               {"low_freq_factor < high_freq_factor"});
  expect_error(with(kLlama31_8B, {{"rope_scaling", {{"factor", 0.0}}}}), {"factor"});
  replaced["rope_scaling"] = {{"type", "linear"}};
  expect_error(replaced, {"factor", "missing"});
  expect_error(with(kLlama31_8B, {{"rope_scaling", 8}}), {"rope_scaling"});
  expect_error(with(kLlama31_8B, {{"partial_rotary_factor", 0.5}}), {"partial_rotary_factor"});
}

TEST(Config, RejectsUnsupportedFeatures) {
  expect_error(with(kLlama31_8B, {{"mlp_bias", true}}), {"mlp_bias"});
  expect_error(with(kLlama31_8B, {{"hidden_act", "gelu"}}), {"'gelu'", "silu"});
  expect_error(with(kLlama31_8B, {{"torch_dtype", "float64"}}), {"'float64'", "bfloat16"});
  expect_error(with(kLlama32_1B_v5, {{"dtype", "int8"}}), {"'dtype'", "int8"});
  expect_error(with(kQwen25_05B, {{"use_sliding_window", true}}), {"use_sliding_window"});
}

TEST(Config, RejectsTokenIdsOutsideTheVocabulary) {
  expect_error(with(kMistral7B, {{"eos_token_id", 32000}}), {"eos_token_id", "32000"});
  expect_error(with(kMistral7B, {{"eos_token_id", {2, 40000}}}), {"eos_token_id", "40000"});
  expect_error(with(kMistral7B, {{"eos_token_id", {2, "x"}}}), {"eos_token_id"});
  expect_error(with(kMistral7B, {{"bos_token_id", -3}}), {"bos_token_id"});
  expect_error(with(kMistral7B, {{"pad_token_id", 32000}}), {"pad_token_id"});
}

TEST(Config, LoadReportsMissingAndMalformedFiles) {
  test::TempDir dir;
  EXPECT_THROW(load_config(dir / "config.json"), Error);
  EXPECT_THROW(load_config(dir.path()), Error);
  test::write_bytes(dir / "config.json", "{\"architectures\": [");
  try {
    load_config(dir / "config.json");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find((dir / "config.json").string()), std::string::npos);
  }
  test::write_bytes(dir / "config.json", kQwen25_05B);
  EXPECT_EQ(load_config(dir / "config.json"), parse(kQwen25_05B));
}

}  // namespace
}  // namespace duet::model

namespace duet::model {
namespace {

// Presets parse through the same validation as config.json files and carry
// the published shapes (spot checks that would catch a swapped field).
TEST(Presets, ParseAndHaveThePublishedShapes) {
  for (const auto& name : preset_names()) EXPECT_NO_THROW(preset_config(name)) << name;
  const auto l8 = preset_config("llama-3.1-8b");
  EXPECT_EQ(l8.hidden_size, 4096);
  EXPECT_EQ(l8.intermediate_size, 14336);
  EXPECT_EQ(l8.head_dim, 128);
  EXPECT_EQ(l8.num_key_value_heads, 8);
  EXPECT_EQ(l8.rope_scaling.type, RopeType::Llama3);
  EXPECT_FALSE(l8.tie_word_embeddings);
  const auto l1 = preset_config("llama-3.2-1b");
  EXPECT_EQ(l1.head_dim, 64);
  EXPECT_TRUE(l1.tie_word_embeddings);
  const auto q = preset_config("qwen2.5-7b");
  EXPECT_EQ(q.head_dim, 128);  // 3584 / 28
  EXPECT_TRUE(q.has_qkv_bias());
  EXPECT_FALSE(q.attention_window().has_value());
  EXPECT_EQ(preset_config("mistral-7b").attention_window().value_or(0), 4096);
  EXPECT_THROW(preset_config("llama-9"), Error);
}

}  // namespace
}  // namespace duet::model
