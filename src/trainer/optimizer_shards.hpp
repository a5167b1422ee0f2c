#pragma once
// The optimizer state of a checkpoint as shards: a data-parallel run writes
// one file per shard, optimizer-shard-R-of-N.safetensors, holding elements
// [begin, end) of the flat fp32 master weights and AdamW moments (as
// dist::ShardLayout(total, N) cuts them) in the tensors "master", "exp_avg"
// and "exp_avg_sq". Reading takes any element range from a checkpoint of any
// shard count, or from a one-process optimizer.safetensors (per tensor), so a
// run resumes on another number of ranks.
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "engine/parameters.hpp"

namespace duet::trainer {

std::string optimizer_shard_file(int shard, int shards);

struct OptimizerPart {
  std::span<const float> master, exp_avg, exp_avg_sq;  // one shard's elements
};

// Writes shard `shard` of `shards` into `dir` (temporary file, then rename).
void write_optimizer_shard(const std::filesystem::path& dir, int shard, int shards, size_t total,
                           const OptimizerPart& part);

struct OptimizerRange {
  size_t begin = 0;                               // first element of the flat buffer
  std::span<float> master, exp_avg, exp_avg_sq;  // the range's elements, filled
};

// Fills `range` from `dir`: from its `shards` shard files, or from
// optimizer.safetensors when shards is 0. duet::fail naming the file when one
// is missing or does not match the model.
void read_optimizer_range(const std::filesystem::path& dir, int shards, const std::vector<engine::TensorSlot>& slots,
                          const OptimizerRange& range);

}  // namespace duet::trainer
