#include "layout/rank_balance.hpp"

#include <algorithm>
#include <numeric>
#include <set>
#include <utility>

#include "util/error.hpp"

namespace duet::layout {

std::vector<std::vector<size_t>> balance_ranks(std::span<const int64_t> row_tokens, int ranks) {
  if (ranks < 1) fail("the number of ranks must be >= 1, got {}", ranks);
  std::vector<size_t> order(row_tokens.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return row_tokens[a] > row_tokens[b]; });

  std::vector<std::vector<size_t>> assigned(ranks);
  std::set<std::pair<int64_t, int>> load;  // (tokens so far, rank): least loaded first
  for (int r = 0; r < ranks; ++r) load.emplace(0, r);
  for (size_t row : order) {
    auto [tokens, rank] = *load.begin();
    load.erase(load.begin());
    assigned[rank].push_back(row);
    load.emplace(tokens + row_tokens[row], rank);
  }
  for (auto& rows : assigned) std::sort(rows.begin(), rows.end());
  return assigned;
}

}  // namespace duet::layout
