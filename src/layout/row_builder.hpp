#pragma once
// Appends examples, as trees in depth-first order, to one row.
#include <cstdint>
#include <span>

#include "layout/example.hpp"
#include "layout/row.hpp"

namespace duet::layout {

class RowBuilder {
 public:
  explicit RowBuilder(Layout layout) : layout_(layout) {}

  // shared: one tree [prompt | r0 | r1 | ...]; paired: k chains
  // [prompt | r0] [prompt | r1] ... . duet::fail on an invalid example.
  void add(const TokenizedExample& example);

  int64_t size() const { return static_cast<int64_t>(row_.token.size()); }

  // Pads to `capacity` (0 = exact length, no padding) and hands the row over;
  // the builder is empty afterwards. duet::fail when the row is longer.
  Row finish(int64_t capacity, TokenId pad);

 private:
  // One tree: the prompt, then the listed responses as sibling subtrees.
  void add_tree(const TokenizedExample& example, std::span<const int32_t> responses);
  void append(TokenId token, int32_t position, int32_t parent);

  Layout layout_;
  Row row_;
};

// Lays out `members` (indices into `examples`) in one row, in that order.
Row build_row(std::span<const TokenizedExample> examples, std::span<const size_t> members,
              Layout layout, int64_t capacity, TokenId pad);

}  // namespace duet::layout
