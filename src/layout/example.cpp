#include "layout/example.hpp"

#include "util/error.hpp"

namespace duet::layout {

std::string_view layout_name(Layout layout) {
  return layout == Layout::paired ? "paired" : "shared";
}

Layout parse_layout(std::string_view name) {
  if (name == "paired") return Layout::paired;
  if (name == "shared") return Layout::shared;
  fail("unknown layout '{}': use 'paired' or 'shared'", name);
}

ExampleShape shape_of(const TokenizedExample& example) {
  ExampleShape shape;
  shape.prompt = static_cast<int64_t>(example.prompt.size());
  for (const auto& r : example.responses) shape.responses.push_back(static_cast<int64_t>(r.size()));
  return shape;
}

void check_shape(const ExampleShape& shape, int64_t index) {
  if (shape.responses.size() < 2)
    fail("example {} has {} response(s); a preference example needs at least 2", index,
         shape.responses.size());
  if (shape.prompt <= 0) fail("example {} has an empty prompt", index);
  for (size_t r = 0; r < shape.responses.size(); ++r)
    if (shape.responses[r] <= 0) fail("example {} has an empty response {}", index, r);
}

void check_example(const TokenizedExample& example) {
  check_shape(shape_of(example), example.index);
}

int64_t response_tokens(const ExampleShape& shape) {
  int64_t total = 0;
  for (int64_t length : shape.responses) total += length;
  return total;
}

int64_t unit_tokens(const ExampleShape& shape, Layout layout) {
  const int64_t prompts = layout == Layout::paired ? static_cast<int64_t>(shape.responses.size()) : 1;
  return shape.prompt * prompts + response_tokens(shape);
}

int64_t unit_tokens(const TokenizedExample& example, Layout layout) {
  return unit_tokens(shape_of(example), layout);
}

}  // namespace duet::layout
