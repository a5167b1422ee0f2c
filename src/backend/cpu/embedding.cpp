// Embedding lookup and its deterministic scatter-add backward.
#include "backend/embedding.hpp"
#include "backend/cpu/threading.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

namespace duet::backend::cpu {

namespace {
void check_ids(const char* op, const uint32_t* ids, int64_t n, int64_t vocab) {
  for (int64_t t = 0; t < n; ++t)
    if (ids[t] >= vocab) fail("{}: ids[{}] = {} is outside the vocabulary [0, {})", op, t, ids[t], vocab);
}
}  // namespace

template <typename T>
void embedding_forward(const EmbeddingParams<T>& p) {
  p.validate();
  check_ids("embedding", p.ids, p.n_tokens, p.vocab);
  const int64_t dim = p.dim;
#pragma omp parallel for schedule(static) if (parallel_worth(p.n_tokens * dim))
  for (int64_t t = 0; t < p.n_tokens; ++t)
    std::memcpy(p.out + t * dim, p.table + int64_t{p.ids[t]} * dim, sizeof(T) * dim);
}

template <typename T>
void embedding_backward(const EmbeddingBackwardParams<T>& p) {
  p.validate();
  check_ids("embedding backward", p.ids, p.n_tokens, p.vocab);
  // Token indices grouped by id, each group in token order (stable sort): one
  // task per distinct id owns its row of d_table, so no two threads write the
  // same row and every row sums in the same order whatever the thread count.
  std::vector<int64_t> order(p.n_tokens);
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return p.ids[a] < p.ids[b]; });
  std::vector<int64_t> group_begin;
  for (int64_t i = 0; i < p.n_tokens; ++i)
    if (i == 0 || p.ids[order[i]] != p.ids[order[i - 1]]) group_begin.push_back(i);
  group_begin.push_back(p.n_tokens);

  const int64_t dim = p.dim;
  const int64_t n_groups = static_cast<int64_t>(group_begin.size()) - 1;
#pragma omp parallel for schedule(dynamic, 16) if (parallel_worth(p.n_tokens * dim))
  for (int64_t g = 0; g < n_groups; ++g) {
    T* row = p.d_table + int64_t{p.ids[order[group_begin[g]]]} * dim;
    for (int64_t i = group_begin[g]; i < group_begin[g + 1]; ++i) {
      const T* src = p.d_out + order[i] * dim;
      for (int64_t c = 0; c < dim; ++c) row[c] += src[c];
    }
  }
}

template void embedding_forward<float>(const EmbeddingParams<float>&);
template void embedding_forward<double>(const EmbeddingParams<double>&);
template void embedding_backward<float>(const EmbeddingBackwardParams<float>&);
template void embedding_backward<double>(const EmbeddingBackwardParams<double>&);

}  // namespace duet::backend::cpu
