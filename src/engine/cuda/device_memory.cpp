#include "engine/cuda/device_memory.hpp"

#include <fmt/format.h>

namespace duet::engine::cuda {

using backend::cuda::check;

void DeviceBuffer::allocate(size_t bytes, const char* what) {
  release();
  if (bytes == 0) return;
  const cudaError_t status = cudaMalloc(&ptr_, bytes);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear the sticky allocation error
    size_t free = 0, total = 0;
    cudaMemGetInfo(&free, &total);
    check(status, fmt::format("allocating {:.2f} GiB for {} ({:.2f} GiB free of {:.2f})", bytes / 1073741824.0, what,
                              free / 1073741824.0, total / 1073741824.0)
                      .c_str());
  }
  bytes_ = bytes;
}

void DeviceBuffer::assign(const void* host, size_t bytes, const char* what) {
  allocate(bytes, what);
  if (bytes) check(cudaMemcpy(ptr_, host, bytes, cudaMemcpyHostToDevice), fmt::format("copying {}", what).c_str());
}

void DeviceBuffer::release() {
  if (ptr_) cudaFree(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

void PinnedBuffer::reserve(size_t bytes) {
  if (bytes <= bytes_) return;
  release();
  check(cudaMallocHost(&ptr_, bytes), "allocating pinned host memory");
  bytes_ = bytes;
}

void PinnedBuffer::release() {
  if (ptr_) cudaFreeHost(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

}  // namespace duet::engine::cuda
