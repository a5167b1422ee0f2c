#include "backend/cuda/common.hpp"

#include "util/error.hpp"

namespace duet::backend::cuda {

void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  if (status == cudaErrorMemoryAllocation)
    throw OutOfMemory(
        fmt::format("{}: out of GPU memory (lower --pack-tokens or turn on --gradient-checkpointing)", what));
  fail("{}: CUDA error {}: {}", what, cudaGetErrorName(status), cudaGetErrorString(status));
}

}  // namespace duet::backend::cuda
