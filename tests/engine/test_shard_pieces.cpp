// The CUDA engine's ZeRO shards as device pieces (pure host code, so tested
// everywhere): for every rank of several rank counts, the pieces of its host
// range are that range in host order, compact, each element where the device
// layout puts it, with its tensor's decay flag; over the ranks every
// parameter element belongs to exactly one piece and no padding to any.
#include <gtest/gtest.h>

#include <random>

#include "dist/shard_layout.hpp"
#include "engine/shard_pieces.hpp"
#include "tiny_models.hpp"
#include "util/error.hpp"

namespace duet::engine {
namespace {

class ShardPiecesFamilies : public ::testing::TestWithParam<model::Architecture> {};

// The decay flag of the host tensor holding element `i`.
bool decay_at(const std::vector<TensorSlot>& host, size_t i) {
  for (const auto& s : host)
    if (i >= s.offset && i < s.offset + s.numel) return s.decay;
  ADD_FAILURE() << "element " << i << " in no tensor";
  return false;
}

TEST_P(ShardPiecesFamilies, CoverEachRanksHostRangeAtItsDeviceOffsets) {
  auto config = testing::tiny_config(GetParam());
  config.hidden_size = 40;  // sizes that are not multiples of 64: the device layout pads between groups
  config.head_dim = 10;
  const DeviceLayout layout(config);
  const auto host = layout_parameters(config);
  ParameterSet<float> values(config);
  testing::randomize(values, testing::fresh_seed());
  std::vector<float> flat;
  layout.to_device_order(values, flat);
  const size_t total = values.values().size();
  ASSERT_EQ(host_numel(layout), total);
  for (int ranks : {1, 2, 3, 7, 64}) {
    const dist::ShardLayout cut(total, ranks);
    std::vector<int> owners(layout.total, 0);
    for (int r = 0; r < ranks; ++r) {
      const auto pieces = shard_pieces(layout, cut.begin(r), cut.end(r));
      size_t at = 0;  // the pieces tile the compact shard in order
      for (const ShardPiece& p : pieces) {
        ASSERT_EQ(p.shard_offset, at) << ranks << " ranks, rank " << r;
        ASSERT_GT(p.numel, 0u);
        ASSERT_LE(p.device_offset + p.numel, layout.total);
        for (size_t i = 0; i < p.numel; ++i) {
          const size_t h = cut.begin(r) + p.shard_offset + i;
          ASSERT_EQ(flat[p.device_offset + i], values.values()[h])
              << ranks << " ranks, rank " << r << ", element " << h;
          ++owners[p.device_offset + i];
        }
        EXPECT_EQ(p.decay, decay_at(host, cut.begin(r) + p.shard_offset));
        at += p.numel;
      }
      EXPECT_EQ(at, cut.size(r)) << ranks << " ranks, rank " << r;
    }
    std::vector<int> expected(layout.total, 0);  // 1 on the parameters, 0 on the padding
    for (const auto& s : layout.slots) std::fill_n(expected.begin() + static_cast<ptrdiff_t>(s.offset), s.numel, 1);
    EXPECT_EQ(owners, expected) << ranks << " ranks";
  }
}

// A range cut at random points (inside tensors, or exactly on a boundary).
TEST_P(ShardPiecesFamilies, SplitARandomRangeAtTensorBoundariesOnly) {
  const auto config = testing::tiny_config(GetParam());
  const DeviceLayout layout(config);
  const auto host = layout_parameters(config);
  const size_t total = host_numel(layout);
  std::mt19937_64 rng(testing::fresh_seed());
  for (int trial = 0; trial < 50; ++trial) {
    size_t begin = rng() % (total + 1), end = rng() % (total + 1);
    if (trial == 0) begin = host[1].offset, end = host[3].offset;  // on boundaries: whole tensors
    if (begin > end) std::swap(begin, end);
    const auto pieces = shard_pieces(layout, begin, end);
    size_t tensors = 0;  // host tensors the range touches
    for (const auto& s : host) tensors += std::max(begin, s.offset) < std::min(end, s.offset + s.numel);
    EXPECT_EQ(pieces.size(), tensors) << "[" << begin << ", " << end << ")";
    size_t n = 0;
    for (const auto& p : pieces) n += p.numel;
    EXPECT_EQ(n, end - begin);
  }
  EXPECT_THROW(shard_pieces(layout, 0, total + 1), Error);
  EXPECT_THROW(shard_pieces(layout, 5, 4), Error);
}

INSTANTIATE_TEST_SUITE_P(Families, ShardPiecesFamilies,
                         ::testing::Values(model::Architecture::Llama, model::Architecture::Qwen2,
                                           model::Architecture::Mistral),
                         [](const auto& info) { return std::string(model::architecture_model_type(info.param)); });

}  // namespace
}  // namespace duet::engine
