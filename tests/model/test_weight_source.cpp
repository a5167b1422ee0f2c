// The expected tensor list for each family and the checkpoint check against it.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "reference_convert.hpp"
#include "model/weight_source.hpp"
#include "util/error.hpp"

namespace duet::model {
namespace {

using test::TempDir;

ModelConfig random_config(std::mt19937_64& rng, Architecture arch) {
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  ModelConfig c;
  c.architecture = arch;
  c.vocab_size = pick(5, 40);
  c.num_key_value_heads = pick(1, 3);
  c.num_attention_heads = c.num_key_value_heads * pick(1, 3);
  c.head_dim = 2 * pick(1, 4);
  c.hidden_size = pick(2, 24);
  c.intermediate_size = pick(2, 30);
  c.num_hidden_layers = pick(1, 3);
  c.max_position_embeddings = 128;
  c.tie_word_embeddings = pick(0, 1);
  c.attention_bias = arch == Architecture::Llama && pick(0, 1);
  return c;
}

// Shapes written out from the transformers modules (nn.Linear(in, out).weight is [out, in]).
std::map<std::string, Shape> reference_shapes(const ModelConfig& c) {
  const int64_t d = c.hidden_size, q = c.num_attention_heads * c.head_dim,
                kv = c.num_key_value_heads * c.head_dim, f = c.intermediate_size;
  const bool qkv_bias = c.architecture == Architecture::Qwen2 || c.attention_bias;
  const bool o_bias = c.architecture == Architecture::Llama && c.attention_bias;
  std::map<std::string, Shape> s;
  s["model.embed_tokens.weight"] = {c.vocab_size, d};
  s["model.norm.weight"] = {d};
  if (!c.tie_word_embeddings) s["lm_head.weight"] = {c.vocab_size, d};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    s[p + "input_layernorm.weight"] = {d};
    s[p + "post_attention_layernorm.weight"] = {d};
    s[p + "self_attn.q_proj.weight"] = {q, d};
    s[p + "self_attn.k_proj.weight"] = {kv, d};
    s[p + "self_attn.v_proj.weight"] = {kv, d};
    s[p + "self_attn.o_proj.weight"] = {d, q};
    if (qkv_bias) {
      s[p + "self_attn.q_proj.bias"] = {q};
      s[p + "self_attn.k_proj.bias"] = {kv};
      s[p + "self_attn.v_proj.bias"] = {kv};
    }
    if (o_bias) s[p + "self_attn.o_proj.bias"] = {d};
    s[p + "mlp.gate_proj.weight"] = {f, d};
    s[p + "mlp.up_proj.weight"] = {f, d};
    s[p + "mlp.down_proj.weight"] = {d, f};
  }
  return s;
}

struct Tensors {
  std::vector<std::string> names;
  std::vector<Shape> shapes;
  std::vector<std::vector<float>> values;

  void add(std::string name, Shape shape, std::mt19937_64& rng) {
    std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
    std::normal_distribution<float> normal;
    for (auto& x : v) x = normal(rng);
    names.push_back(std::move(name));
    shapes.push_back(std::move(shape));
    values.push_back(std::move(v));
  }
  void write(const std::filesystem::path& path, DType dtype) const {
    std::vector<TensorData> views;
    for (size_t i = 0; i < names.size(); ++i) views.push_back({names[i], shapes[i], values[i]});
    write_safetensors(path, views, dtype);
  }
};

Tensors tensors_for(const ModelConfig& c, std::mt19937_64& rng) {
  Tensors t;
  for (const auto& e : expected_tensors(c)) t.add(e.name, e.shape, rng);
  return t;
}

std::string error_of(const ModelConfig& c, const std::filesystem::path& path) {
  try {
    WeightSource source(c, Checkpoint::open(path));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(WeightSource, ExpectedTensorsMatchTheModuleShapes) {
  DUET_SEEDED_RNG(rng);
  for (int trial = 0; trial < 60; ++trial) {
    const auto c = random_config(rng, static_cast<Architecture>(trial % 3));
    const auto expected = expected_tensors(c);
    std::map<std::string, Shape> got;
    for (const auto& e : expected) EXPECT_TRUE(got.emplace(e.name, e.shape).second) << e.name;
    EXPECT_EQ(got, reference_shapes(c));
    EXPECT_EQ(expected.front().name, "model.embed_tokens.weight");
  }
}

TEST(WeightSource, AcceptsAMatchingCheckpointInEachDtype) {
  DUET_SEEDED_RNG(rng);
  TempDir dir;
  for (int trial = 0; trial < 12; ++trial) {
    const auto c = random_config(rng, static_cast<Architecture>(trial % 3));
    const auto t = tensors_for(c, rng);
    const DType dtype = std::array{DType::BF16, DType::F16, DType::F32}[trial % 3];
    t.write(dir / "model.safetensors", dtype);
    save_config(c, dir / "config.json");
    const auto source = WeightSource::open(dir.path());
    EXPECT_EQ(source.config(), c);
    EXPECT_EQ(source.tensors().size(), t.names.size());
    for (size_t i = 0; i < t.names.size(); ++i) {
      EXPECT_EQ(source.dtype(t.names[i]), dtype);
      std::vector<float> out(t.values[i].size());
      source.load_f32(t.names[i], out);
      for (size_t k = 0; k < out.size(); ++k) {
        const float v = t.values[i][k];
        const float want = dtype == DType::BF16 ? test::ref_stored_bf16(v)
                           : dtype == DType::F16 ? test::ref_stored_fp16(v) : v;
        EXPECT_EQ(out[k], want);
      }
    }
  }
}

TEST(WeightSource, NamesAMissingTensorAndItsShape) {
  DUET_SEEDED_RNG(rng);
  TempDir dir;
  for (int trial = 0; trial < 9; ++trial) {
    const auto c = random_config(rng, static_cast<Architecture>(trial % 3));
    auto t = tensors_for(c, rng);
    const size_t drop = rng() % t.names.size();
    const std::string name = t.names[drop];
    const Shape shape = t.shapes[drop];
    t.names.erase(t.names.begin() + static_cast<long>(drop));
    t.shapes.erase(t.shapes.begin() + static_cast<long>(drop));
    t.values.erase(t.values.begin() + static_cast<long>(drop));
    t.write(dir / "model.safetensors", DType::BF16);
    const auto message = error_of(c, dir / "model.safetensors");
    EXPECT_NE(message.find("'" + name + "'"), std::string::npos) << message;
    EXPECT_NE(message.find(format_shape(shape)), std::string::npos) << message;
    EXPECT_NE(message.find("missing"), std::string::npos) << message;
  }
}

TEST(WeightSource, NamesAWrongShapeAndTheExpectedOne) {
  DUET_SEEDED_RNG(rng);
  TempDir dir;
  for (int trial = 0; trial < 9; ++trial) {
    const auto c = random_config(rng, static_cast<Architecture>(trial % 3));
    auto t = tensors_for(c, rng);
    const size_t k = rng() % t.names.size();
    const Shape expected = t.shapes[k];
    Shape wrong = expected;
    wrong.back() += 1;
    t.shapes[k] = wrong;
    t.values[k].resize(static_cast<size_t>(shape_numel(wrong)));
    t.write(dir / "model.safetensors", DType::F16);
    const auto message = error_of(c, dir / "model.safetensors");
    EXPECT_NE(message.find("'" + t.names[k] + "' has shape " + format_shape(wrong)), std::string::npos)
        << message;
    EXPECT_NE(message.find("needs " + format_shape(expected)), std::string::npos) << message;
  }
}

TEST(WeightSource, RejectsTensorsTheConfigWouldIgnore) {
  DUET_SEEDED_RNG(rng);
  TempDir dir;
  auto c = random_config(rng, Architecture::Mistral);
  auto t = tensors_for(c, rng);
  t.add("model.layers.0.self_attn.q_proj.bias", {c.q_size()}, rng);  // biases in a bias-free model
  t.add("model.layers.0.self_attn.k_proj.bias", {c.kv_size()}, rng);
  t.write(dir / "model.safetensors", DType::BF16);
  const auto message = error_of(c, dir / "model.safetensors");
  EXPECT_NE(message.find("model.layers.0.self_attn.k_proj.bias"), std::string::npos) << message;
  EXPECT_NE(message.find("1 more tensors unused"), std::string::npos) << message;
}

TEST(WeightSource, IgnoresRotaryBuffersAndATiedLmHead) {
  DUET_SEEDED_RNG(rng);
  TempDir dir;
  auto c = random_config(rng, Architecture::Llama);
  c.tie_word_embeddings = true;
  auto t = tensors_for(c, rng);
  t.add("lm_head.weight", {c.vocab_size, c.hidden_size}, rng);
  t.add("model.layers.0.self_attn.rotary_emb.inv_freq", {c.head_dim / 2}, rng);
  t.write(dir / "model.safetensors", DType::F32);
  EXPECT_EQ(error_of(c, dir / "model.safetensors"), "");
  c.tie_word_embeddings = false;  // now lm_head is required and present, inv_freq still ignorable
  EXPECT_EQ(error_of(c, dir / "model.safetensors"), "");
}

TEST(WeightSource, RejectsNonFloatWeights) {
  TempDir dir;
  ModelConfig c;
  c.vocab_size = 2;
  c.hidden_size = c.head_dim = 2;
  c.intermediate_size = c.num_hidden_layers = c.num_attention_heads = c.num_key_value_heads = 1;
  c.max_position_embeddings = 8;
  c.tie_word_embeddings = true;
  nlohmann::json header = nlohmann::json::object();
  size_t offset = 0;
  for (const auto& e : expected_tensors(c)) {
    const bool ints = e.name == "model.norm.weight";
    const size_t bytes = static_cast<size_t>(shape_numel(e.shape)) * (ints ? 8 : 4);
    header[e.name] = {{"dtype", ints ? "I64" : "F32"}, {"shape", e.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  test::write_bytes(dir / "model.safetensors",
                    test::safetensors_bytes(header.dump(), std::string(offset, '\0')));
  const auto message = error_of(c, dir / "model.safetensors");
  EXPECT_NE(message.find("'model.norm.weight' has dtype I64"), std::string::npos) << message;
}

}  // namespace
}  // namespace duet::model
