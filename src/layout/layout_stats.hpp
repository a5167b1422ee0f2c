#pragma once
// Token totals of the four layouts (paired/shared x unpacked/packed) for a
// dataset's shapes, as the rows pack_examples builds would hold them.
#include <cstdint>
#include <span>

#include "layout/example.hpp"

namespace duet::layout {

struct LayoutTotals {
  int64_t rows = 0;
  int64_t tokens = 0;   // example tokens (prompt copies included in paired)
  int64_t padding = 0;  // pad tokens at row ends
  int64_t total() const { return tokens + padding; }
};

struct LayoutStats {
  LayoutTotals paired_unpacked;
  LayoutTotals paired_packed;
  LayoutTotals shared_unpacked;
  LayoutTotals shared_packed;
};

// Rows of pack_tokens (0 = unpacked: one exact-length row per example), packed
// in consecutive groups of `group` examples (e.g. one global batch; 0 = all
// examples as one pool). duet::fail as check_fits does.
LayoutTotals layout_totals(std::span<const ExampleShape> shapes, Layout layout,
                           int64_t pack_tokens, int64_t group = 0);

// All four; pack_tokens must be > 0.
LayoutStats layout_stats(std::span<const ExampleShape> shapes, int64_t pack_tokens,
                         int64_t group = 0);

}  // namespace duet::layout
