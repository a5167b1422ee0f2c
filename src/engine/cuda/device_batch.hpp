#pragma once
// One micro-batch on the device: the token-forest arrays, the log-prob
// targets, the groupings of tokens by id and of targets by row (computed on
// the host, so the backward's scatter-adds need no atomics) and d(loss)/d(logp) per target.
// Uploaded from pinned memory with asynchronous copies.
#include <cstdint>
#include <vector>

#include "engine/batch.hpp"
#include "engine/cuda/device_memory.hpp"

namespace duet::engine::cuda {

struct DeviceBatch {
  int64_t n_tokens = 0, n_targets = 0, n_id_groups = 0, n_row_groups = 0;
  uint32_t* tokens = nullptr;
  int32_t* positions = nullptr;
  int32_t* visible_until = nullptr;
  int32_t* target_rows = nullptr;
  uint32_t* target_ids = nullptr;
  int32_t* id_order = nullptr;        // token indices sorted by id (stable)
  int32_t* id_group_start = nullptr;  // [n_id_groups + 1]
  int32_t* row_order = nullptr;       // target indices sorted by target row (stable)
  int32_t* row_group_start = nullptr;  // [n_row_groups + 1]
  float* d_logp = nullptr;            // [n_targets]
};

// Device room for batches of up to max_tokens tokens and max_targets targets.
DeviceBatch carve_batch(Arena& arena, int64_t max_tokens, int64_t max_targets);

// The tokens of `batch` the GPU computes: its trailing padding left out, but
// rounded up to a multiple of 64 (steadier product shapes), never past the row.
int64_t device_tokens(const Batch& batch);
// The most a row of `used` real tokens can bring: `used` rounded up as above.
int64_t device_tokens_at_most(int64_t used);

// Fills `host` (pinned, grown as needed) with the arrays of the batch's first
// device_tokens(batch) tokens and its targets and copies them into `dev` on
// `stream`; dev's counts are set.
void upload_batch(const Batch& batch, DeviceBatch& dev, PinnedBuffer& host, cudaStream_t stream);

}  // namespace duet::engine::cuda
