#pragma once
// Spreads a step's rows over data-parallel ranks so token counts balance.
#include <cstdint>
#include <span>
#include <vector>

namespace duet::layout {

// Longest-processing-time greedy: rows by tokens, largest first (ties: lower
// index), each to the rank with the least load so far (ties: lowest rank).
// Guarantees max load - min load <= the largest row. Returns, per rank, its
// row indices in ascending order; a rank may get none when rows < ranks.
std::vector<std::vector<size_t>> balance_ranks(std::span<const int64_t> row_tokens, int ranks);

}  // namespace duet::layout
