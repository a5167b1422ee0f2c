#pragma once
// Deterministic best-fit-decreasing bin packing (the packer behind rows).
#include <cstdint>
#include <span>
#include <vector>

namespace duet::layout {

// Returns bins of item indices. Items are taken by size, largest first (ties:
// lower index first); each goes into the open bin with the least room that
// still fits it (ties: the earliest bin), else opens a new bin. Bins appear in
// opening order, items within a bin in insertion order. The result depends
// only on the inputs. duet::fail on a size <= 0 or > capacity.
std::vector<std::vector<size_t>> best_fit_decreasing(std::span<const int64_t> sizes,
                                                     int64_t capacity);

}  // namespace duet::layout
