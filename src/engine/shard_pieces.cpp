#include "engine/shard_pieces.hpp"

#include <algorithm>

#include "util/error.hpp"

namespace duet::engine {

size_t host_numel(const DeviceLayout& layout) {
  size_t n = 0;
  for (const auto& s : layout.slots) n += s.numel;
  return n;
}

std::vector<ShardPiece> shard_pieces(const DeviceLayout& layout, size_t begin, size_t end) {
  if (begin > end || end > host_numel(layout))
    fail("internal: shard [{}, {}) outside a parameter set of {} elements", begin, end, host_numel(layout));
  std::vector<const DeviceSlot*> by_host;
  for (const auto& s : layout.slots) by_host.push_back(&s);
  std::sort(by_host.begin(), by_host.end(), [](auto* a, auto* b) { return a->host_offset < b->host_offset; });
  std::vector<ShardPiece> pieces;
  for (const DeviceSlot* s : by_host) {
    const size_t first = std::max(begin, s->host_offset), last = std::min(end, s->host_offset + s->numel);
    if (first >= last) continue;
    pieces.push_back({first - begin, s->offset + (first - s->host_offset), last - first, s->decay});
  }
  return pieces;
}

}  // namespace duet::engine
