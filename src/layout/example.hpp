#pragma once
// What the layout consumes: one tokenized preference example (a prompt and k
// ranked responses), its token-free shape, and the two layouts.
#include <cstdint>
#include <string_view>
#include <vector>

namespace duet::layout {

using TokenId = uint32_t;

// responses[0] = chosen, [1] = rejected, further ones ranked best first.
// Requires k >= 2, a non-empty prompt and non-empty responses.
struct TokenizedExample {
  int64_t index = 0;  // the example's id, carried into segments and targets
  std::vector<TokenId> prompt;
  std::vector<std::vector<TokenId>> responses;
};

// Token counts only: what packing, batching and statistics need.
struct ExampleShape {
  int64_t prompt = 0;
  std::vector<int64_t> responses;
};

enum class Layout {
  paired,  // k separate chains [prompt | response_r]: the baseline format
  shared,  // one tree: the prompt once, each response a sibling subtree
};

std::string_view layout_name(Layout layout);
// Parses "paired" / "shared"; duet::fail on anything else.
Layout parse_layout(std::string_view name);

ExampleShape shape_of(const TokenizedExample& example);

// duet::fail (naming the example) when k < 2 or a prompt/response is empty.
void check_example(const TokenizedExample& example);
void check_shape(const ExampleShape& shape, int64_t index);

// Tokens the example occupies in a row: shared = P + sum L_r,
// paired = k*P + sum L_r. This is the packing unit (never split).
int64_t unit_tokens(const ExampleShape& shape, Layout layout);
int64_t unit_tokens(const TokenizedExample& example, Layout layout);
// sum L_r: the example's log-prob targets, in either layout.
int64_t response_tokens(const ExampleShape& shape);

}  // namespace duet::layout
