#pragma once
// Argument checks shared by the ops' validate() functions. Each failure names
// the op and the field, so a caller's bad size or null pointer is found at the
// API boundary rather than as a crash inside a kernel.
#include <cstdint>

#include "util/error.hpp"

// Functions shared by the CPU kernels and the CUDA kernels (tile
// classification, dropout masks), so that both compute exactly the same.
#if defined(__CUDACC__)
#define DUET_HOST_DEVICE __host__ __device__
#else
#define DUET_HOST_DEVICE
#endif

namespace duet::backend::detail {

// A pointer to `count` elements: may be null only when count is 0.
inline void require_data(const char* op, const char* field, const void* ptr, int64_t count) {
  if (count > 0 && ptr == nullptr) fail("{}: {} is null", op, field);
}

inline void require_positive(const char* op, const char* field, int64_t value) {
  if (value <= 0) fail("{}: {} must be positive (got {})", op, field, value);
}

inline void require_non_negative(const char* op, const char* field, int64_t value) {
  if (value < 0) fail("{}: {} must not be negative (got {})", op, field, value);
}

// A row stride must cover the row it steps over.
inline void require_stride(const char* op, const char* field, int64_t stride, int64_t row) {
  if (stride < row) fail("{}: {} ({}) is smaller than a row ({} elements)", op, field, stride, row);
}

}  // namespace duet::backend::detail
