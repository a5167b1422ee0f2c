#include "engine/device_layout.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "util/error.hpp"

namespace duet::engine {

namespace {

constexpr size_t kAlign = 64;  // elements

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Groups of tensors that must be adjacent, in device order; a tensor the
// config lacks (biases) is left out of its group.
std::vector<std::vector<std::string>> device_groups(const model::ModelConfig& c) {
  std::vector<std::vector<std::string>> g;
  g.push_back({"model.embed_tokens.weight"});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const auto p = fmt::format("model.layers.{}.", l);
    g.push_back({p + "input_layernorm.weight"});
    g.push_back({p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight", p + "self_attn.v_proj.weight"});
    g.push_back({p + "self_attn.q_proj.bias", p + "self_attn.k_proj.bias", p + "self_attn.v_proj.bias"});
    g.push_back({p + "self_attn.o_proj.weight"});
    g.push_back({p + "self_attn.o_proj.bias"});
    g.push_back({p + "post_attention_layernorm.weight"});
    g.push_back({p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"});
    g.push_back({p + "mlp.down_proj.weight"});
  }
  g.push_back({"model.norm.weight"});
  g.push_back({"lm_head.weight"});
  return g;
}

}  // namespace

DeviceLayout::DeviceLayout(const model::ModelConfig& config) : host_slots_(layout_parameters(config)) {
  place(device_groups(config));
}

DeviceLayout::DeviceLayout(std::vector<TensorSlot> host_slots) : host_slots_(std::move(host_slots)) {
  std::vector<std::vector<std::string>> groups;
  for (const auto& s : host_slots_) groups.push_back({s.name});
  place(groups);
}

void DeviceLayout::place(const std::vector<std::vector<std::string>>& groups) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < host_slots_.size(); ++i) index[host_slots_[i].name] = i;
  size_t offset = 0;
  for (const auto& group : groups) {
    bool any = false;
    for (const auto& name : group) {
      auto it = index.find(name);
      if (it == index.end()) continue;
      const TensorSlot& s = host_slots_[it->second];
      slots.push_back({it->second, s.offset, offset, s.numel, s.decay});
      offset += s.numel;
      index.erase(it);
      any = true;
    }
    if (any) offset = align_up(offset);
  }
  if (!index.empty()) fail("internal: device layout misses parameter '{}'", index.begin()->first);
  total = offset;
}

bool DeviceLayout::has(const std::string& name) const {
  return std::any_of(slots.begin(), slots.end(), [&](const DeviceSlot& s) { return host_slots_[s.host_slot].name == name; });
}

size_t DeviceLayout::offset(const std::string& name) const {
  for (const auto& s : slots)
    if (host_slots_[s.host_slot].name == name) return s.offset;
  fail("internal: no parameter named '{}' in the device layout", name);
}

template <typename T>
void DeviceLayout::to_device_order(const ParameterSet<T>& host, std::vector<T>& flat) const {
  flat.assign(total, T(0));
  for (const auto& s : slots) {
    const T* src = host.values().data() + host_slots_[s.host_slot].offset;
    std::copy(src, src + s.numel, flat.begin() + static_cast<ptrdiff_t>(s.offset));
  }
}

template <typename T>
void DeviceLayout::to_host_order(const std::vector<T>& flat, ParameterSet<T>& host) const {
  if (flat.size() != total) fail("internal: device buffer has {} elements, layout {}", flat.size(), total);
  for (const auto& s : slots) {
    const T* src = flat.data() + s.offset;
    std::copy(src, src + s.numel, host.values().begin() + static_cast<ptrdiff_t>(host_slots_[s.host_slot].offset));
  }
}

template void DeviceLayout::to_device_order<float>(const ParameterSet<float>&, std::vector<float>&) const;
template void DeviceLayout::to_host_order<float>(const std::vector<float>&, ParameterSet<float>&) const;

}  // namespace duet::engine
