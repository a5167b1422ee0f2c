#include "layout/dense_mask.hpp"

#include <algorithm>

namespace duet::layout {

std::vector<uint8_t> dense_mask(const Row& row) {
  const size_t n = row.token.size();
  std::vector<uint8_t> mask(n * n, 0);
  for (size_t j = 0; j < n; ++j) {
    const size_t until = std::min(n, static_cast<size_t>(std::max(row.visible_until[j], 0)));
    for (size_t i = j; i < until; ++i) mask[i * n + j] = 1;
  }
  return mask;
}

}  // namespace duet::layout
