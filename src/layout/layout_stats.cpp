#include "layout/layout_stats.hpp"

#include <algorithm>
#include <vector>

#include "layout/pack_rows.hpp"
#include "util/error.hpp"

namespace duet::layout {

LayoutTotals layout_totals(std::span<const ExampleShape> shapes, Layout layout,
                           int64_t pack_tokens, int64_t group) {
  if (group < 0) fail("the packing group size must be >= 0 (0 = one pool), got {}", group);
  std::vector<int64_t> sizes;
  sizes.reserve(shapes.size());
  LayoutTotals totals;
  for (size_t i = 0; i < shapes.size(); ++i) {
    check_fits(shapes[i], static_cast<int64_t>(i), layout, pack_tokens);
    sizes.push_back(unit_tokens(shapes[i], layout));
    totals.tokens += sizes.back();
  }
  const size_t step = group > 0 ? static_cast<size_t>(group) : std::max<size_t>(sizes.size(), 1);
  for (size_t begin = 0; begin < sizes.size(); begin += step) {
    const size_t end = std::min(sizes.size(), begin + step);
    totals.rows += static_cast<int64_t>(
        plan_rows(std::span<const int64_t>(sizes).subspan(begin, end - begin), pack_tokens).size());
  }
  if (pack_tokens > 0) totals.padding = totals.rows * pack_tokens - totals.tokens;
  return totals;
}

LayoutStats layout_stats(std::span<const ExampleShape> shapes, int64_t pack_tokens,
                         int64_t group) {
  if (pack_tokens <= 0) fail("layout statistics need pack_tokens > 0, got {}", pack_tokens);
  return {layout_totals(shapes, Layout::paired, 0, group),
          layout_totals(shapes, Layout::paired, pack_tokens, group),
          layout_totals(shapes, Layout::shared, 0, group),
          layout_totals(shapes, Layout::shared, pack_tokens, group)};
}

}  // namespace duet::layout
