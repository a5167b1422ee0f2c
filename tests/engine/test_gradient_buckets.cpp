// ZeRO stage 2's gradient buckets on the CUDA engine (pure host code, so
// tested everywhere): the layer buckets and the outer one (embedding, final
// norm, LM head) tile the device buffers; every parameter element belongs to
// exactly one owner's part of one bucket, and no padding to any; and the
// reduce the engine runs — each rank stages its whole gradient bucket by
// bucket, each part summed over the ranks into its owner's staging, the owner
// adding its parts into its compact shard — leaves on every rank exactly its
// host-order shard of the summed gradient (integer values: exact sums).
#include <gtest/gtest.h>

#include <random>

#include "dist/shard_layout.hpp"
#include "engine/gradient_buckets.hpp"
#include "engine/shard_pieces.hpp"
#include "tiny_models.hpp"
#include "util/error.hpp"

namespace duet::engine {
namespace {

class GradientBucketsFamilies : public ::testing::TestWithParam<model::Architecture> {};

model::ModelConfig padded_config(model::Architecture arch) {
  auto config = testing::tiny_config(arch);
  config.hidden_size = 40;  // not multiples of 64: the device layout pads between groups
  config.head_dim = 10;
  return config;
}

TEST_P(GradientBucketsFamilies, TileTheDeviceBuffersLayerByLayer) {
  const auto config = padded_config(GetParam());
  const DeviceLayout layout(config);
  const GradientBuckets buckets = gradient_buckets(config, layout, 1);
  ASSERT_EQ(buckets.layers.size(), static_cast<size_t>(config.num_hidden_layers));
  std::vector<int> covered(layout.total, 0);
  auto cover = [&](const GradientBucket& b) {
    size_t staged = 0;
    for (const auto& [begin, end] : b.ranges) {
      for (size_t i = begin; i < end; ++i) ++covered[i];
      EXPECT_EQ(b.staging_offset(begin), staged);
      EXPECT_EQ(b.staging_offset(end - 1), staged + (end - begin - 1));
      staged += end - begin;
    }
    EXPECT_EQ(staged, b.numel);
  };
  cover(buckets.outer);
  for (const auto& b : buckets.layers) cover(b);
  EXPECT_EQ(covered, std::vector<int>(layout.total, 1));
  // A layer's bucket is its own tensors; the outer one the embedding, final norm and LM head.
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    const auto& b = buckets.layers[static_cast<size_t>(l)];
    ASSERT_EQ(b.ranges.size(), 1u);
    const auto in_bucket = [&](const std::string& name) {
      const size_t o = layout.offset(name);
      return o >= b.ranges[0].first && o < b.ranges[0].second;
    };
    const std::string p = "model.layers." + std::to_string(l) + ".";
    EXPECT_TRUE(in_bucket(p + "input_layernorm.weight"));
    EXPECT_TRUE(in_bucket(p + "self_attn.q_proj.weight"));
    EXPECT_TRUE(in_bucket(p + "mlp.down_proj.weight"));
    EXPECT_FALSE(in_bucket("model.norm.weight"));
  }
  for (const char* name : {"model.embed_tokens.weight", "model.norm.weight"})
    EXPECT_NO_THROW(buckets.outer.staging_offset(layout.offset(name))) << name;
  if (!config.tie_word_embeddings) EXPECT_NO_THROW(buckets.outer.staging_offset(layout.offset("lm_head.weight")));
  EXPECT_EQ(buckets.largest_layer(), buckets.layers.front().numel);
  EXPECT_THROW(buckets.layers.front().staging_offset(layout.offset("model.norm.weight")), Error);
}

TEST_P(GradientBucketsFamilies, ReducingEveryBucketLeavesEachRankItsShardOfTheSum) {
  const auto config = padded_config(GetParam());
  const DeviceLayout layout(config);
  const size_t total = host_numel(layout);
  std::mt19937_64 rng(testing::fresh_seed());
  for (int ranks : {1, 2, 3, 7}) {
    SCOPED_TRACE(::testing::Message() << ranks << " ranks");
    const GradientBuckets buckets = gradient_buckets(config, layout, ranks);
    const dist::ShardLayout cut(total, ranks);
    // Each rank's whole gradient, in host order and in the device layout (padding 0).
    std::vector<std::vector<float>> device(static_cast<size_t>(ranks));
    std::vector<float> sum(total, 0.0f);
    for (auto& flat : device) {
      ParameterSet<float> g(config);
      for (float& v : g.values()) v = static_cast<float>(static_cast<int>(rng() % 201) - 100);
      for (size_t i = 0; i < total; ++i) sum[i] += g.values()[i];
      layout.to_device_order(g, flat);
    }
    std::vector<std::vector<float>> shard(static_cast<size_t>(ranks));
    for (int r = 0; r < ranks; ++r) shard[static_cast<size_t>(r)].assign(cut.size(r), 0.0f);
    std::vector<int> owned(layout.total, 0);
    std::vector<const GradientBucket*> all{&buckets.outer};
    for (const auto& b : buckets.layers) all.push_back(&b);
    for (const GradientBucket* b : all) {
      // Staging: the bucket's ranges of each rank's gradient, one after another.
      std::vector<std::vector<float>> staging(static_cast<size_t>(ranks), std::vector<float>(b->numel));
      for (int r = 0; r < ranks; ++r)
        for (const auto& [begin, end] : b->ranges)
          for (size_t i = begin; i < end; ++i) staging[static_cast<size_t>(r)][b->staging_offset(i)] = device[r][i];
      for (const BucketPart& p : b->parts) {
        ASSERT_GE(p.owner, 0);
        ASSERT_LT(p.owner, ranks);
        ASSERT_LE(p.staging_offset + p.numel, b->numel);
        ASSERT_LE(p.shard_offset + p.numel, cut.size(p.owner));
        auto& root = staging[static_cast<size_t>(p.owner)];
        for (size_t i = 0; i < p.numel; ++i) {  // the in-place reduce into the owner's staging
          float s = 0;
          for (int r = 0; r < ranks; ++r) s += staging[static_cast<size_t>(r)][p.staging_offset + i];
          root[p.staging_offset + i] = s;
          shard[static_cast<size_t>(p.owner)][p.shard_offset + i] += root[p.staging_offset + i];
        }
        for (const auto& [begin, end] : b->ranges)  // which device elements the part covers
          for (size_t i = begin; i < end; ++i) {
            const size_t at = b->staging_offset(i);
            owned[i] += at >= p.staging_offset && at < p.staging_offset + p.numel;
          }
      }
    }
    for (int r = 0; r < ranks; ++r)
      for (size_t i = 0; i < cut.size(r); ++i)
        ASSERT_EQ(shard[static_cast<size_t>(r)][i], sum[cut.begin(r) + i]) << "rank " << r << ", element " << i;
    std::vector<int> expected(layout.total, 0);  // 1 on the parameters, 0 on the padding
    for (const auto& s : layout.slots) std::fill_n(expected.begin() + static_cast<ptrdiff_t>(s.offset), s.numel, 1);
    EXPECT_EQ(owned, expected);
  }
}

INSTANTIATE_TEST_SUITE_P(Families, GradientBucketsFamilies,
                         ::testing::Values(model::Architecture::Llama, model::Architecture::Qwen2,
                                           model::Architecture::Mistral),
                         [](const auto& info) { return std::string(model::architecture_model_type(info.param)); });

}  // namespace
}  // namespace duet::engine
