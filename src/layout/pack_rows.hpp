#pragma once
// Examples -> rows: which examples share a row, and the rows themselves.
// An example (a shared tree, or all k paired chains) never splits across rows.
#include <cstdint>
#include <span>
#include <vector>

#include "layout/example.hpp"
#include "layout/row.hpp"

namespace duet::layout {

// duet::fail, naming the example and its sizes, when its unit does not fit in
// pack_tokens (0 = unpacked: anything fits).
void check_fits(const ExampleShape& shape, int64_t index, Layout layout, int64_t pack_tokens);

// Row plans over unit sizes (see unit_tokens): best-fit-decreasing into rows of
// pack_tokens, or one example per row when pack_tokens == 0. Deterministic.
std::vector<std::vector<size_t>> plan_rows(std::span<const int64_t> unit_sizes,
                                           int64_t pack_tokens);

// Checks, plans and builds. Packed rows are padded to pack_tokens with `pad`;
// unpacked rows have exact length (no padding).
std::vector<Row> pack_examples(std::span<const TokenizedExample> examples, Layout layout,
                               int64_t pack_tokens, TokenId pad);

}  // namespace duet::layout
