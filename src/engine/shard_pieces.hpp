#pragma once
// A ZeRO shard of the CUDA engine as pieces of its device buffers. Shards are
// ranges [begin, end) of the host ParameterSet order (dist::ShardLayout), so a
// checkpoint's optimizer shards move between rank counts and engines; the
// device layout groups tensors differently (DeviceLayout), so a host range is
// one contiguous device range per tensor it touches. A rank keeps its shard's
// fp32 master and moments compact, in host order: piece p's elements sit at
// [shard_offset, shard_offset + numel) there and at [device_offset, ...) in
// the full device buffers (gradients, bf16 weights). Pure host code.
#include <cstddef>
#include <vector>

#include "engine/device_layout.hpp"

namespace duet::engine {

struct ShardPiece {
  size_t shard_offset = 0;   // in the shard's compact buffers (host order)
  size_t device_offset = 0;  // in the device layout's buffers
  size_t numel = 0;
  bool decay = true;         // the tensor's weight-decay flag
};

// The pieces of host range [begin, end), in host order; empty pieces are left out.
std::vector<ShardPiece> shard_pieces(const DeviceLayout& layout, size_t begin, size_t end);

// Host elements of a layout (its parameters without the device padding).
size_t host_numel(const DeviceLayout& layout);

}  // namespace duet::engine
