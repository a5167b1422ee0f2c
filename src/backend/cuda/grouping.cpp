#include "backend/cuda/grouping.hpp"

#include <algorithm>
#include <numeric>

#include "util/error.hpp"

namespace duet::backend::cuda {

namespace {
template <typename K>
KeyGroups group(std::span<const K> keys) {
  if (keys.size() > static_cast<size_t>(INT32_MAX)) fail("group_by_key: {} keys exceed int32 indices", keys.size());
  KeyGroups g;
  g.order.resize(keys.size());
  std::iota(g.order.begin(), g.order.end(), 0);
  std::stable_sort(g.order.begin(), g.order.end(), [&](int32_t a, int32_t b) { return keys[a] < keys[b]; });
  for (size_t i = 0; i < keys.size(); ++i)
    if (i == 0 || keys[g.order[i]] != keys[g.order[i - 1]]) g.group_start.push_back(static_cast<int32_t>(i));
  g.group_start.push_back(static_cast<int32_t>(keys.size()));
  return g;
}
}  // namespace

KeyGroups group_by_key(std::span<const uint32_t> keys) { return group(keys); }
KeyGroups group_by_key(std::span<const int32_t> keys) { return group(keys); }

}  // namespace duet::backend::cuda
