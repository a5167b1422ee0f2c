#pragma once
// LoRA dropout's mask, counter-based: element i of an adapter's input is kept
// iff lora_dropout_keeps(key, i, p). The CPU op and the CUDA kernel both call
// this, so a batch drops the same elements on either engine, and a backward
// regenerates the forward's mask instead of storing it.
#include <cstdint>

#include "backend/host_device.hpp"
#include "backend/splitmix64.hpp"

namespace duet::backend {

// Whether dropout with probability p keeps element `index` under `key`: 53
// uniform bits in [0, 1), compared with p as torch compares its uniform draw.
DUET_HOST_DEVICE inline bool lora_dropout_keeps(uint64_t key, uint64_t index, double p) {
  const double u = static_cast<double>(splitmix64(key ^ splitmix64(index)) >> 11) * 0x1.0p-53;
  return u >= p;
}

// The key of one adapted module of one layer, from the key of the whole pass.
DUET_HOST_DEVICE inline uint64_t lora_module_key(uint64_t pass_key, int64_t layer, int64_t module) {
  return splitmix64(splitmix64(pass_key ^ static_cast<uint64_t>(layer)) + static_cast<uint64_t>(module));
}

}  // namespace duet::backend
