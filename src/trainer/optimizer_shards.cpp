#include "trainer/optimizer_shards.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "dist/shard_layout.hpp"
#include "model/safetensors.hpp"
#include "util/error.hpp"

namespace duet::trainer {

namespace fs = std::filesystem;

namespace {

constexpr const char* kGroups[] = {"master", "exp_avg", "exp_avg_sq"};
constexpr const char* kOneProcessFile = "optimizer.safetensors";

std::span<float> group(const OptimizerRange& r, int g) { return g == 0 ? r.master : g == 1 ? r.exp_avg : r.exp_avg_sq; }

// Copies elements [first, last) of an F32 tensor that starts at element
// `tensor_begin` of the flat buffer into the range.
void copy_part(const model::SafetensorsFile& file, const std::string& name, size_t tensor_begin, size_t first,
               size_t last, const OptimizerRange& range, int g) {
  const model::TensorInfo* info = file.find(name);
  if (!info) fail("{} lacks tensor '{}'", file.path().string(), name);
  if (info->dtype != model::DType::F32)
    fail("{}: tensor '{}' is not F32: not written by duet train", file.path().string(), name);
  const auto bytes = file.bytes(*info);
  if ((last - tensor_begin) * sizeof(float) > bytes.size())
    fail("{}: tensor '{}' holds {} elements, the model needs {}: a checkpoint of another model",
         file.path().string(), name, bytes.size() / sizeof(float), last - tensor_begin);
  std::memcpy(group(range, g).data() + (first - range.begin), bytes.data() + (first - tensor_begin) * sizeof(float),
              (last - first) * sizeof(float));
}

}  // namespace

std::string optimizer_shard_file(int shard, int shards) {
  return fmt::format("optimizer-shard-{:05}-of-{:05}.safetensors", shard, shards);
}

void write_optimizer_shard(const fs::path& dir, int shard, int shards, size_t total, const OptimizerPart& part) {
  const dist::ShardLayout layout(total, shards);
  const auto n = static_cast<int64_t>(part.master.size());
  std::vector<model::TensorData> tensors = {{kGroups[0], {n}, part.master},
                                            {kGroups[1], {n}, part.exp_avg},
                                            {kGroups[2], {n}, part.exp_avg_sq}};
  const std::map<std::string, std::string> metadata = {{"begin", std::to_string(layout.begin(shard))},
                                                       {"end", std::to_string(layout.end(shard))},
                                                       {"total", std::to_string(total)}};
  model::write_safetensors(dir / optimizer_shard_file(shard, shards), tensors, model::DType::F32, metadata);
}

void read_optimizer_range(const fs::path& dir, int shards, const std::vector<engine::TensorSlot>& slots,
                          const OptimizerRange& range) {
  const size_t begin = range.begin, end = range.begin + range.master.size();
  const size_t total = slots.empty() ? 0 : slots.back().offset + slots.back().numel;
  if (shards == 0) {
    // One process's file: a tensor per parameter and group.
    const model::SafetensorsFile file(dir / kOneProcessFile);
    for (const auto& s : slots) {
      const size_t first = std::max(begin, s.offset), last = std::min(end, s.offset + s.numel);
      if (first >= last) continue;
      for (int g = 0; g < 3; ++g) copy_part(file, std::string(kGroups[g]) + "." + s.name, s.offset, first, last, range, g);
    }
    return;
  }
  const dist::ShardLayout layout(total, shards);
  for (int r = 0; r < shards; ++r) {
    const size_t first = std::max(begin, layout.begin(r)), last = std::min(end, layout.end(r));
    if (first >= last) continue;
    const fs::path path = dir / optimizer_shard_file(r, shards);
    if (!fs::exists(path)) fail("{}: missing; the checkpoint is incomplete (written by {} ranks)", path.string(), shards);
    const model::SafetensorsFile file(path);
    const auto& meta = file.metadata();
    const auto said = [&](const char* key) { return meta.count(key) ? meta.at(key) : std::string("?"); };
    if (said("total") != std::to_string(total) || said("begin") != std::to_string(layout.begin(r)))
      fail("{}: holds elements from {} of {}, this model has {} parameters: a checkpoint of another model",
           path.string(), said("begin"), said("total"), total);
    for (int g = 0; g < 3; ++g) copy_part(file, kGroups[g], layout.begin(r), first, last, range, g);
  }
}

}  // namespace duet::trainer
