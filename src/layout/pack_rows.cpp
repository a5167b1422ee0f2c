#include "layout/pack_rows.hpp"

#include <fmt/ranges.h>

#include "layout/bin_packing.hpp"
#include "layout/row_builder.hpp"
#include "util/error.hpp"

namespace duet::layout {

void check_fits(const ExampleShape& shape, int64_t index, Layout layout, int64_t pack_tokens) {
  check_shape(shape, index);
  const int64_t unit = unit_tokens(shape, layout);
  if (pack_tokens > 0 && unit > pack_tokens)
    fail("example {} needs {} tokens in the {} layout (prompt {}, responses {}), more than "
         "pack_tokens = {}; truncate or drop it in the data stage, or raise pack_tokens",
         index, unit, layout_name(layout), shape.prompt, fmt::join(shape.responses, "/"),
         pack_tokens);
}

std::vector<std::vector<size_t>> plan_rows(std::span<const int64_t> unit_sizes,
                                           int64_t pack_tokens) {
  if (pack_tokens < 0) fail("pack_tokens must be >= 0 (0 = no packing), got {}", pack_tokens);
  if (pack_tokens > 0) return best_fit_decreasing(unit_sizes, pack_tokens);
  std::vector<std::vector<size_t>> rows(unit_sizes.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = {i};
  return rows;
}

std::vector<Row> pack_examples(std::span<const TokenizedExample> examples, Layout layout,
                               int64_t pack_tokens, TokenId pad) {
  std::vector<int64_t> sizes;
  sizes.reserve(examples.size());
  for (const auto& e : examples) {
    const ExampleShape shape = shape_of(e);
    check_fits(shape, e.index, layout, pack_tokens);
    sizes.push_back(unit_tokens(shape, layout));
  }
  std::vector<Row> rows;
  for (const auto& members : plan_rows(sizes, pack_tokens))
    rows.push_back(build_row(examples, members, layout, pack_tokens, pad));
  return rows;
}

}  // namespace duet::layout
