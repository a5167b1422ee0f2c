#pragma once
// Where each parameter lives in the CUDA engine's flat device buffers (bf16
// weights, fp32 master, gradients and AdamW moments all share it). The host
// ParameterSet keeps transformers' order; on the device the tensors that one
// fused product reads are adjacent — q/k/v weights (one [q+2kv, d] matrix),
// their biases, gate/up weights (one [2f, d] matrix) — and every group starts
// on a 64-element boundary (256-byte aligned fp32, as cuBLASLt prefers).
// Pure host code: the mapping is tested on the CPU.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/parameters.hpp"
#include "model/config.hpp"

namespace duet::engine {

struct DeviceSlot {
  size_t host_slot = 0;      // index into layout_parameters(config)
  size_t host_offset = 0;    // in elements, in the host ParameterSet
  size_t offset = 0;         // in elements, in the device buffers
  size_t numel = 0;
  bool decay = true;
};

struct DeviceLayout {
  std::vector<DeviceSlot> slots;  // in device order
  size_t total = 0;               // elements, padding included

  // Device offset of a tensor by its transformers name; fails if absent.
  size_t offset(const std::string& name) const;
  bool has(const std::string& name) const;

  // host values (ParameterSet order) <-> device-ordered flat array (padding 0).
  template <typename T>
  void to_device_order(const ParameterSet<T>& host, std::vector<T>& flat) const;
  template <typename T>
  void to_host_order(const std::vector<T>& flat, ParameterSet<T>& host) const;

  // A model's parameters, grouped as above.
  explicit DeviceLayout(const model::ModelConfig& config);
  // Any other parameter set (a LoRA adapter): each tensor on its own boundary.
  explicit DeviceLayout(std::vector<TensorSlot> host_slots);

 private:
  void place(const std::vector<std::vector<std::string>>& groups);
  std::vector<TensorSlot> host_slots_;
};

}  // namespace duet::engine
