#pragma once
// Device memory for the CUDA engine: owned allocations (RAII) and an arena
// that carves one allocation into the step's buffers. The arena is sized by a
// dry run of the same carving code (a null base only counts bytes), so the
// layout is written once and no cudaMalloc happens inside the step loop.
#include <cstddef>
#include <cstdint>

#include "backend/cuda/common.hpp"

namespace duet::engine::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes, const char* what) { allocate(bytes, what); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void allocate(size_t bytes, const char* what);
  // allocate(bytes) and copy `bytes` of host memory in (small tables set once).
  void assign(const void* host, size_t bytes, const char* what);
  void release();
  size_t bytes() const { return bytes_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Page-locked host memory for asynchronous copies.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer() { release(); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  void reserve(size_t bytes);  // grows, never shrinks
  void release();
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Capacities grow in steps of 256 tokens (or targets), so that a run whose
// rows vary a little allocates once.
inline int64_t round_capacity(int64_t n) { return (n + 255) / 256 * 256; }

class Arena {
 public:
  explicit Arena(void* base = nullptr) : base_(static_cast<char*>(base)) {}
  template <typename T>
  T* take(int64_t count) {
    used_ = (used_ + 255) / 256 * 256;
    T* p = base_ ? reinterpret_cast<T*>(base_ + used_) : nullptr;
    used_ += static_cast<size_t>(count) * sizeof(T);
    return p;
  }
  void* take_bytes(size_t bytes) { return take<char>(static_cast<int64_t>(bytes)); }
  size_t used() const { return used_; }
  bool counts_only() const { return base_ == nullptr; }

 private:
  char* base_;
  size_t used_ = 0;
};

}  // namespace duet::engine::cuda
