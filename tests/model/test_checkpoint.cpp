// Checkpoints: a single file, a folder, and sharded indexes (and their errors).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "reference_convert.hpp"
#include "model/checkpoint.hpp"
#include "util/error.hpp"

namespace duet::model {
namespace {

using nlohmann::json;
using test::TempDir;

struct Named {
  std::string name;
  Shape shape;
  std::vector<float> values;
};

std::vector<Named> random_named(std::mt19937_64& rng, int count) {
  std::vector<Named> out;
  for (int i = 0; i < count; ++i) {
    Named t{"model.layers." + std::to_string(i) + ".w", {1 + static_cast<int64_t>(rng() % 5), 1 + static_cast<int64_t>(rng() % 5)}, {}};
    t.values.resize(static_cast<size_t>(shape_numel(t.shape)));
    std::normal_distribution<float> normal;
    for (auto& v : t.values) v = normal(rng);
    out.push_back(std::move(t));
  }
  return out;
}

// Writes the tensors over `shards` files named like save_pretrained's, plus the
// index: the first `shards` tensors one per shard (none is empty), the rest at random.
json write_sharded(const TempDir& dir, const std::vector<Named>& tensors, size_t shards,
                   std::mt19937_64& rng) {
  std::vector<std::vector<TensorData>> parts(shards);
  json weight_map = json::object();
  for (size_t k = 0; k < tensors.size(); ++k) {
    const auto& t = tensors[k];
    const size_t s = k < shards ? k : rng() % shards;
    parts[s].push_back({t.name, t.shape, t.values});
  }
  for (size_t s = 0; s < shards; ++s) {
    const auto file = "model-0000" + std::to_string(s + 1) + "-of-0000" + std::to_string(shards) + ".safetensors";
    write_safetensors(dir / file, parts[s], DType::BF16);
    for (const auto& t : parts[s]) weight_map[t.name] = file;
  }
  json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}};
  test::write_bytes(dir / "model.safetensors.index.json", index.dump(2));
  return index;
}

void expect_same(const Checkpoint& ckpt, const std::vector<Named>& tensors) {
  std::vector<std::string> names;
  for (const auto& t : tensors) names.push_back(t.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(ckpt.names(), names);
  for (const auto& t : tensors) {
    EXPECT_EQ(ckpt.tensor(t.name).shape, t.shape);
    std::vector<float> out(t.values.size());
    ckpt.load_f32(t.name, out);
    for (size_t i = 0; i < out.size(); ++i)
      EXPECT_EQ(out[i], test::ref_stored_bf16(t.values[i])) << t.name << " " << i;
  }
}

void expect_error(const std::filesystem::path& path, std::initializer_list<std::string> fragments) {
  try {
    Checkpoint::open(path);
    ADD_FAILURE() << "opened " << path;
  } catch (const Error& e) {
    for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, SingleFileByPathOrFolder) {
  DUET_SEEDED_RNG(rng);
  TempDir dir;
  const auto tensors = random_named(rng, 5);
  std::vector<TensorData> views;
  for (const auto& t : tensors) views.push_back({t.name, t.shape, t.values});
  write_safetensors(dir / "model.safetensors", views, DType::BF16);
  const auto by_file = Checkpoint::open(dir / "model.safetensors");
  expect_same(by_file, tensors);
  const auto by_folder = Checkpoint::open(dir.path());
  EXPECT_EQ(by_folder.path(), dir / "model.safetensors");
  expect_same(by_folder, tensors);
  EXPECT_EQ(by_folder.find("nope"), nullptr);
  EXPECT_THROW(by_folder.tensor("nope"), Error);
  std::vector<float> out(1);
  EXPECT_THROW(by_folder.load_f32("nope", out), Error);
}

TEST(Checkpoint, ShardedIndex) {
  DUET_SEEDED_RNG(rng);
  TempDir dir;
  const auto tensors = random_named(rng, 12);
  const json index = write_sharded(dir, tensors, 3, rng);
  // The index wins over a stray model.safetensors in the same folder.
  write_safetensors(dir / "model.safetensors", {}, DType::F32);
  const auto ckpt = Checkpoint::open(dir.path());
  EXPECT_EQ(ckpt.path(), dir / "model.safetensors.index.json");
  expect_same(ckpt, tensors);
  for (const auto& t : tensors)
    EXPECT_EQ(ckpt.file_of(t.name).path(), dir / index["weight_map"][t.name].get<std::string>());
  expect_same(Checkpoint::open(dir / "model.safetensors.index.json"), tensors);
}

TEST(Checkpoint, TensorsOutsideTheWeightMapAreIgnored) {
  DUET_SEEDED_RNG(rng);
  TempDir dir;
  const auto tensors = random_named(rng, 4);
  std::vector<TensorData> views;
  for (const auto& t : tensors) views.push_back({t.name, t.shape, t.values});
  write_safetensors(dir / "shard.safetensors", views, DType::BF16);
  json index = {{"weight_map", {{tensors[0].name, "shard.safetensors"}, {tensors[2].name, "shard.safetensors"}}}};
  test::write_bytes(dir / "model.safetensors.index.json", index.dump());
  const auto ckpt = Checkpoint::open(dir.path());
  EXPECT_EQ(ckpt.names(), (std::vector<std::string>{tensors[0].name, tensors[2].name}));
}

TEST(Checkpoint, ReportsBrokenIndexes) {
  DUET_SEEDED_RNG(rng);
  TempDir dir;
  const auto index_path = dir / "model.safetensors.index.json";
  expect_error(dir.path(), {"no model.safetensors or model.safetensors.index.json"});

  const auto tensors = random_named(rng, 6);
  json index = write_sharded(dir, tensors, 2, rng);
  auto put = [&](const json& j) { test::write_bytes(index_path, j.dump()); };

  json missing_shard = index;
  missing_shard["weight_map"][tensors[3].name] = "model-00009-of-00009.safetensors";
  put(missing_shard);
  expect_error(dir.path(), {"model-00009-of-00009.safetensors", "cannot open"});

  json wrong_shard = index;  // maps a tensor to a shard that does not hold it
  const std::string holder = index["weight_map"][tensors[1].name];
  std::string other;
  for (const auto& t : tensors)
    if (index["weight_map"][t.name] != holder) other = index["weight_map"][t.name];
  ASSERT_FALSE(other.empty());  // two shards, neither empty
  wrong_shard["weight_map"][tensors[1].name] = other;
  put(wrong_shard);
  expect_error(dir.path(), {tensors[1].name, other, "no such tensor"});
  json unknown = index;
  unknown["weight_map"]["model.extra.weight"] = holder;
  put(unknown);
  expect_error(dir.path(), {"model.extra.weight", "no such tensor"});

  json escape = index;
  escape["weight_map"][tensors[0].name] = "../model.safetensors";
  put(escape);
  expect_error(dir.path(), {"not a file name"});

  json numeric = index;
  numeric["weight_map"][tensors[0].name] = 3;
  put(numeric);
  expect_error(dir.path(), {"non-string"});

  put(json{{"metadata", {}}});
  expect_error(dir.path(), {"weight_map"});
  put(json{{"weight_map", json::object()}});
  expect_error(dir.path(), {"weight_map"});
  test::write_bytes(index_path, "{\"weight_map\": {");
  expect_error(dir.path(), {"not valid JSON"});

  // A corrupt shard is reported with the index as context.
  put(index);
  const std::string shard = index["weight_map"][tensors[0].name];
  test::write_bytes(dir / shard, "garbage");
  expect_error(dir.path(), {index_path.string(), shard, "too short"});
}

}  // namespace
}  // namespace duet::model
