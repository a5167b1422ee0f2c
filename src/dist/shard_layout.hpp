#pragma once
// How a flat buffer of `total` elements is cut into one contiguous shard per
// rank (DeepSpeed's flat partition): shards of ceil(total / ranks) elements,
// the last ones shorter or empty. Only the rank count decides it, so a
// checkpoint's shards are found again with another count (re-sharding).
#include <algorithm>
#include <cstddef>

namespace duet::dist {

struct ShardLayout {
  size_t total = 0;
  int ranks = 1;
  size_t chunk = 0;  // elements of a full shard

  ShardLayout(size_t total_elements, int rank_count)
      : total(total_elements), ranks(rank_count), chunk((total_elements + rank_count - 1) / rank_count) {}

  size_t begin(int rank) const { return std::min(total, static_cast<size_t>(rank) * chunk); }
  size_t end(int rank) const { return std::min(total, static_cast<size_t>(rank + 1) * chunk); }
  size_t size(int rank) const { return end(rank) - begin(rank); }
};

}  // namespace duet::dist
