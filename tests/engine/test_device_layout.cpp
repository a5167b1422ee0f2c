// The CUDA engine's device layout (pure host code, so tested everywhere): every
// parameter placed once, fused groups adjacent, groups 64-element aligned, and
// host -> device -> host order round trips exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <fmt/format.h>

#include "engine/device_layout.hpp"
#include "engine/lora.hpp"
#include "tiny_models.hpp"

namespace duet::engine {
namespace {

class DeviceLayoutFamilies : public ::testing::TestWithParam<model::Architecture> {};

TEST_P(DeviceLayoutFamilies, PlacesEveryTensorOnceWithFusedGroupsAdjacent) {
  auto config = testing::tiny_config(GetParam());
  config.hidden_size = 40;  // q/k/v sizes that are not multiples of 64: padding must appear between groups only
  config.head_dim = 10;
  const DeviceLayout layout(config);
  const auto host = layout_parameters(config);
  ASSERT_EQ(layout.slots.size(), host.size());
  // No overlap, inside the buffer.
  auto sorted = layout.slots;
  std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.offset < b.offset; });
  for (size_t i = 0; i + 1 < sorted.size(); ++i) EXPECT_LE(sorted[i].offset + sorted[i].numel, sorted[i + 1].offset);
  EXPECT_LE(sorted.back().offset + sorted.back().numel, layout.total);
  for (const auto& s : layout.slots) {
    EXPECT_EQ(s.numel, host[s.host_slot].numel);
    EXPECT_EQ(s.decay, host[s.host_slot].decay);
  }
  // Fused groups: each member starts where the previous ends; a group starts aligned.
  auto adjacent = [&](const std::vector<std::string>& names) {
    const size_t first = layout.offset(names[0]);
    EXPECT_EQ(first % 64, 0u) << names[0];
    size_t at = first;
    for (const auto& n : names) {
      EXPECT_EQ(layout.offset(n), at) << n;
      at += std::find_if(host.begin(), host.end(), [&](const TensorSlot& h) { return h.name == n; })->numel;
    }
  };
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    const auto p = fmt::format("model.layers.{}.", l);
    adjacent({p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight", p + "self_attn.v_proj.weight"});
    adjacent({p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"});
    if (config.has_qkv_bias())
      adjacent({p + "self_attn.q_proj.bias", p + "self_attn.k_proj.bias", p + "self_attn.v_proj.bias"});
  }
  EXPECT_EQ(layout.has("lm_head.weight"), !config.tie_word_embeddings);
}

TEST_P(DeviceLayoutFamilies, RoundTripsHostOrder) {
  const auto config = testing::tiny_config(GetParam());
  const DeviceLayout layout(config);
  ParameterSet<float> a(config), b(config);
  testing::randomize(a, testing::fresh_seed());
  b.fill(-1.0f);
  std::vector<float> flat;
  layout.to_device_order(a, flat);
  ASSERT_EQ(flat.size(), layout.total);
  layout.to_host_order(flat, b);
  EXPECT_TRUE(std::equal(a.values().begin(), a.values().end(), b.values().begin()));
}

// A LoRA adapter's tensors (rank 5: sizes not multiples of 64): each placed
// once on its own 64-element boundary, and the host order round trips.
TEST_P(DeviceLayoutFamilies, PlacesAnAdapterTensorByTensor) {
  const auto config = testing::tiny_config(GetParam());
  LoraConfig lora;
  lora.r = 5;
  lora.target_modules = parse_target_modules({"all-linear"});
  const auto slots = layout_adapter(config, lora);
  const DeviceLayout layout(slots);
  ASSERT_EQ(layout.slots.size(), slots.size());
  size_t end = 0;
  for (size_t i = 0; i < layout.slots.size(); ++i) {
    const DeviceSlot& d = layout.slots[i];
    EXPECT_EQ(d.offset % 64, 0u) << slots[d.host_slot].name;
    EXPECT_GE(d.offset, end);
    EXPECT_EQ(d.numel, slots[d.host_slot].numel);
    EXPECT_EQ(layout.offset(slots[d.host_slot].name), d.offset);
    end = d.offset + d.numel;
  }
  EXPECT_LE(end, layout.total);
  ParameterSet<float> a(slots), b(slots);
  testing::randomize(a, testing::fresh_seed());
  b.fill(-1.0f);
  std::vector<float> flat;
  layout.to_device_order(a, flat);
  layout.to_host_order(flat, b);
  EXPECT_TRUE(std::equal(a.values().begin(), a.values().end(), b.values().begin()));
}

INSTANTIATE_TEST_SUITE_P(Families, DeviceLayoutFamilies,
                         ::testing::Values(model::Architecture::Llama, model::Architecture::Qwen2,
                                           model::Architecture::Mistral),
                         [](const auto& info) { return std::string(model::architecture_model_type(info.param)); });

}  // namespace
}  // namespace duet::engine
