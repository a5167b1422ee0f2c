#include "layout/row_builder.hpp"

#include <limits>
#include <numeric>
#include <vector>

#include "util/error.hpp"

namespace duet::layout {

namespace {
constexpr int64_t kMaxRowTokens = std::numeric_limits<int32_t>::max();
}

void RowBuilder::append(TokenId token, int32_t position, int32_t parent) {
  row_.token.push_back(token);
  row_.position.push_back(position);
  row_.visible_until.push_back(0);  // set when the segment or tree closes
  row_.parent.push_back(parent);
}

void RowBuilder::add_tree(const TokenizedExample& example, std::span<const int32_t> responses) {
  const auto tree_begin = static_cast<int32_t>(size());
  const auto prompt_length = static_cast<int32_t>(example.prompt.size());
  for (int32_t d = 0; d < prompt_length; ++d)
    append(example.prompt[d], d, d == 0 ? -1 : tree_begin + d - 1);
  const int32_t prompt_end = tree_begin + prompt_length;
  row_.segments.push_back({example.index, kPromptSegment, tree_begin, prompt_end});

  for (int32_t r : responses) {
    const auto& response = example.responses[r];
    const auto begin = static_cast<int32_t>(size());
    for (size_t t = 0; t < response.size(); ++t) {
      const int32_t i = begin + static_cast<int32_t>(t);
      append(response[t], prompt_length + static_cast<int32_t>(t), t == 0 ? prompt_end - 1 : i - 1);
    }
    const auto end = static_cast<int32_t>(size());
    for (int32_t i = begin; i < end; ++i) row_.visible_until[i] = end;
    row_.segments.push_back({example.index, r, begin, end});
  }
  const auto tree_end = static_cast<int32_t>(size());
  for (int32_t i = tree_begin; i < prompt_end; ++i) row_.visible_until[i] = tree_end;
}

void RowBuilder::add(const TokenizedExample& example) {
  check_example(example);
  if (size() + unit_tokens(example, layout_) > kMaxRowTokens)
    fail("example {} does not fit in a row of at most {} tokens", example.index, kMaxRowTokens);
  std::vector<int32_t> all(example.responses.size());
  std::iota(all.begin(), all.end(), 0);
  if (layout_ == Layout::shared) {
    add_tree(example, all);
  } else {
    for (int32_t r : all) add_tree(example, std::span<const int32_t>(&r, 1));
  }
}

Row RowBuilder::finish(int64_t capacity, TokenId pad) {
  if (capacity < 0 || capacity > kMaxRowTokens)
    fail("row capacity {} is out of range (0 = exact length, at most {})", capacity,
         kMaxRowTokens);
  if (capacity != 0 && size() > capacity)
    fail("the row holds {} tokens, more than its capacity of {}", size(), capacity);
  row_.used = static_cast<int32_t>(size());
  for (int64_t i = size(); i < capacity; ++i) {
    append(pad, 0, -1);
    row_.visible_until.back() = static_cast<int32_t>(i + 1);  // sees only itself
  }
  Row out = std::move(row_);
  row_ = Row{};
  return out;
}

Row build_row(std::span<const TokenizedExample> examples, std::span<const size_t> members,
              Layout layout, int64_t capacity, TokenId pad) {
  RowBuilder builder(layout);
  for (size_t m : members) builder.add(examples[m]);
  return builder.finish(capacity, pad);
}

}  // namespace duet::layout
