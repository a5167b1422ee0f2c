#pragma once
// Token embedding: out[t] = table[ids[t]].
// Backward scatter-adds rows of d_out into d_table. Ids repeat (the same token
// many times in a row), so the CPU kernel groups tokens by id and sums each
// group in token order: deterministic for any thread count, no atomics.
#include <cstdint>

#include "backend/common.hpp"

namespace duet::backend {

template <typename T>
struct EmbeddingParams {
  const uint32_t* ids = nullptr;  // [n_tokens], each < vocab
  const T* table = nullptr;       // [vocab, dim]
  T* out = nullptr;               // [n_tokens, dim], written
  int64_t n_tokens = 0;
  int64_t vocab = 0;
  int64_t dim = 0;

  void validate() const {
    using namespace detail;
    const char* op = "embedding";
    require_non_negative(op, "n_tokens", n_tokens);
    require_positive(op, "vocab", vocab);
    require_positive(op, "dim", dim);
    require_data(op, "ids", ids, n_tokens);
    require_data(op, "table", table, vocab * dim);
    require_data(op, "out", out, n_tokens * dim);
  }
};

template <typename T>
struct EmbeddingBackwardParams {
  const uint32_t* ids = nullptr;  // [n_tokens]
  const T* d_out = nullptr;       // [n_tokens, dim]
  T* d_table = nullptr;           // [vocab, dim], accumulated (+=)
  int64_t n_tokens = 0;
  int64_t vocab = 0;
  int64_t dim = 0;

  void validate() const {
    using namespace detail;
    const char* op = "embedding backward";
    require_non_negative(op, "n_tokens", n_tokens);
    require_positive(op, "vocab", vocab);
    require_positive(op, "dim", dim);
    require_data(op, "ids", ids, n_tokens);
    require_data(op, "d_out", d_out, n_tokens * dim);
    require_data(op, "d_table", d_table, vocab * dim);
  }
};

namespace cpu {
// Both also check every id against vocab (validate() cannot: on a GPU the ids
// live in device memory).
template <typename T>
void embedding_forward(const EmbeddingParams<T>& p);
template <typename T>
void embedding_backward(const EmbeddingBackwardParams<T>& p);
}  // namespace cpu

}  // namespace duet::backend
