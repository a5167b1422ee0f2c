#include "engine/gradient_buckets.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "dist/shard_layout.hpp"
#include "engine/shard_pieces.hpp"
#include "util/error.hpp"

namespace duet::engine {

size_t GradientBucket::staging_offset(size_t device_offset) const {
  size_t staged = 0;
  for (const auto& [begin, end] : ranges) {
    if (device_offset >= begin && device_offset < end) return staged + (device_offset - begin);
    staged += end - begin;
  }
  fail("internal: device element {} is in no range of this gradient bucket", device_offset);
}

size_t GradientBuckets::largest_layer() const {
  size_t n = 0;
  for (const auto& b : layers) n = std::max(n, b.numel);
  return n;
}

namespace {

GradientBucket bucket_of(std::vector<std::pair<size_t, size_t>> ranges) {
  GradientBucket b;
  for (const auto& [begin, end] : ranges)
    if (begin < end) b.ranges.emplace_back(begin, end), b.numel += end - begin;
  return b;
}

// Adds to `bucket` the parts of one rank's shard pieces that fall in its ranges.
void add_parts(GradientBucket& bucket, const std::vector<ShardPiece>& pieces, int owner) {
  for (const ShardPiece& p : pieces)
    for (const auto& [begin, end] : bucket.ranges) {
      const size_t first = std::max(begin, p.device_offset), last = std::min(end, p.device_offset + p.numel);
      if (first >= last) continue;
      bucket.parts.push_back(
          {bucket.staging_offset(first), p.shard_offset + (first - p.device_offset), last - first, owner});
    }
}

}  // namespace

GradientBuckets gradient_buckets(const model::ModelConfig& c, const DeviceLayout& layout, int ranks) {
  if (ranks < 1) fail("internal: gradient buckets over {} ranks", ranks);
  const size_t final_norm = layout.offset("model.norm.weight");
  // Layer l starts at its input norm (the first of its groups) and ends where the next layer, or the final norm, starts.
  std::vector<size_t> starts;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    starts.push_back(layout.offset(fmt::format("model.layers.{}.input_layernorm.weight", l)));
  starts.push_back(final_norm);
  GradientBuckets out;
  out.outer = bucket_of({{0, starts.front()}, {final_norm, layout.total}});
  for (size_t l = 0; l + 1 < starts.size(); ++l) out.layers.push_back(bucket_of({{starts[l], starts[l + 1]}}));
  const dist::ShardLayout cut(host_numel(layout), ranks);
  for (int r = 0; r < ranks; ++r) {
    const auto pieces = shard_pieces(layout, cut.begin(r), cut.end(r));
    add_parts(out.outer, pieces, r);
    for (auto& b : out.layers) add_parts(b, pieces, r);
  }
  return out;
}

}  // namespace duet::engine
