#pragma once
// A LoRA adapter on a linear layer, as PEFT computes it:
//   y += scaling * dropout(x) A^T B^T,   A [rank, in], B [out, rank].
// The base product (backend/linear.hpp) is separate: the adapter adds to its
// output, and its backward adds to the base's dx. Dropout (training only) is a
// counter-based mask: element i of x is kept iff keep(dropout_key, i), so the
// backward regenerates the mask instead of storing it, and a batch scored twice
// with the same key sees the same mask. Kept elements are scaled by 1/(1-p),
// as torch's nn.Dropout does.
#include <cstdint>

#include "backend/common.hpp"

namespace duet::backend {

// The mask functions are DUET_HOST_DEVICE, so that a GPU engine draws exactly
// the CPU engine's masks.
DUET_HOST_DEVICE inline uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Whether dropout with probability p keeps element `index` under `key`: a
// uniform draw of 53 bits in [0, 1), kept when >= p (as torch compares).
DUET_HOST_DEVICE inline bool lora_dropout_keeps(uint64_t key, uint64_t index, double p) {
  return static_cast<double>(splitmix64(key ^ splitmix64(index)) >> 11) * 0x1.0p-53 >= p;
}

// The key of one adapted module of one layer, from the key of the whole pass.
DUET_HOST_DEVICE inline uint64_t lora_module_key(uint64_t pass_key, int64_t layer, int64_t module) {
  return splitmix64(splitmix64(pass_key ^ static_cast<uint64_t>(layer)) + static_cast<uint64_t>(module));
}

template <typename T>
struct LoraShape {
  const T* x = nullptr;  // [n_rows, in_features], the base layer's input
  const T* a = nullptr;  // [rank, in_features]
  const T* b = nullptr;  // [out_features, rank]
  int64_t n_rows = 0, in_features = 0, out_features = 0, rank = 0;
  double scaling = 1.0;  // lora_alpha / rank (or / sqrt(rank) with rsLoRA)
  double dropout = 0.0;  // probability of zeroing an input element; 0: none
  uint64_t dropout_key = 0;
  T* scratch = nullptr;  // lora_scratch_elements(...) elements, overwritten

  void validate(const char* op) const {
    using namespace detail;
    require_non_negative(op, "n_rows", n_rows);
    require_positive(op, "in_features", in_features);
    require_positive(op, "out_features", out_features);
    require_positive(op, "rank", rank);
    require_data(op, "x", x, n_rows * in_features);
    require_data(op, "a", a, rank * in_features);
    require_data(op, "b", b, out_features * rank);
    require_data(op, "scratch", scratch, n_rows * (in_features + 2 * rank));
    if (!(dropout >= 0 && dropout < 1)) fail("{}: dropout must be in [0, 1) (got {})", op, dropout);
  }
};

// Scratch both passes need: the dropped-out input and two [n, rank] products.
inline int64_t lora_scratch_elements(int64_t n_rows, int64_t in_features, int64_t rank) {
  return n_rows * (in_features + 2 * rank);
}

template <typename T>
struct LoraParams : LoraShape<T> {
  T* y = nullptr;  // [n_rows, out_features], accumulated (+=)
  void validate() const {
    LoraShape<T>::validate("lora");
    detail::require_data("lora", "y", y, this->n_rows * this->out_features);
  }
};

template <typename T>
struct LoraBackwardParams : LoraShape<T> {
  const T* dy = nullptr;  // [n_rows, out_features]
  T* dx = nullptr;        // [n_rows, in_features], accumulated (+=); null: not needed
  T* da = nullptr;        // [rank, in_features], accumulated
  T* db = nullptr;        // [out_features, rank], accumulated
  void validate() const {
    LoraShape<T>::validate("lora backward");
    detail::require_data("lora backward", "dy", dy, this->n_rows * this->out_features);
    detail::require_data("lora backward", "da", da, this->rank * this->in_features);
    detail::require_data("lora backward", "db", db, this->out_features * this->rank);
  }
};

namespace cpu {
template <typename T>
void lora_forward(const LoraParams<T>& p);
template <typename T>
void lora_backward(const LoraBackwardParams<T>& p);
}  // namespace cpu

}  // namespace duet::backend
