#pragma once
// The dense attention mask a row's visible_until stands for. O(T^2): a
// reference for tests and debugging only, never on the training path.
#include <cstdint>
#include <vector>

#include "layout/row.hpp"

namespace duet::layout {

// T x T, row-major by query: mask[i * T + j] = 1 iff j <= i < visible_until[j].
std::vector<uint8_t> dense_mask(const Row& row);

}  // namespace duet::layout
