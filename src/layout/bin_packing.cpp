#include "layout/bin_packing.hpp"

#include <algorithm>
#include <numeric>
#include <set>
#include <utility>

#include "util/error.hpp"

namespace duet::layout {

std::vector<std::vector<size_t>> best_fit_decreasing(std::span<const int64_t> sizes,
                                                     int64_t capacity) {
  for (size_t i = 0; i < sizes.size(); ++i)
    if (sizes[i] <= 0 || sizes[i] > capacity)
      fail("item {} of size {} cannot be packed into bins of capacity {}", i, sizes[i], capacity);

  std::vector<size_t> order(sizes.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return sizes[a] > sizes[b]; });

  std::vector<std::vector<size_t>> bins;
  std::set<std::pair<int64_t, size_t>> room;  // (free capacity, bin): least room first
  for (size_t item : order) {
    auto it = room.lower_bound({sizes[item], 0});
    size_t bin;
    int64_t free;
    if (it == room.end()) {
      bin = bins.size();
      bins.emplace_back();
      free = capacity;
    } else {
      std::tie(free, bin) = *it;
      room.erase(it);
    }
    bins[bin].push_back(item);
    free -= sizes[item];
    if (free > 0) room.emplace(free, bin);  // a full bin can take nothing more
  }
  return bins;
}

}  // namespace duet::layout
