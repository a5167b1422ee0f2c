#pragma once
// Host-side grouping for the deterministic scatter-adds (no atomics): the
// embedding backward groups tokens by id, the target log-probs backward groups
// targets by hidden row. The engine calls group_by_key once per batch (on the
// host, where the ids and target rows are built) and copies `order` and
// `group_start` to the device with the batch.
#include <cstdint>
#include <span>
#include <vector>

namespace duet::backend::cuda {

struct KeyGroups {
  std::vector<int32_t> order;        // [n]: indices 0..n-1 stably sorted by key
  std::vector<int32_t> group_start;  // [n_groups + 1]: offsets into order, one group per distinct key
  int64_t n_groups() const { return static_cast<int64_t>(group_start.size()) - 1; }
};

// For EmbeddingBackward (keys = token ids) and TargetLogprobsBackward
// (keys = target_rows). n = 0 gives empty order and group_start = {0}.
KeyGroups group_by_key(std::span<const uint32_t> keys);
KeyGroups group_by_key(std::span<const int32_t> keys);

}  // namespace duet::backend::cuda
