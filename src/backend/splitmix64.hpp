#pragma once
// SplitMix64, the counter-based hash behind duet's reproducible random draws
// (LoRA's dropout masks, the CUDA engine's random weights): element i of a
// stream is a pure function of (key, i), on the CPU and on the GPU alike.
#include <cstdint>

#include "backend/host_device.hpp"

namespace duet::backend {

DUET_HOST_DEVICE inline uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace duet::backend
