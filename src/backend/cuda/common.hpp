#pragma once
// What every CUDA op shares: the bf16 type, error checks that turn CUDA
// failures into duet::Error (one line naming the op), and the stream type.
// Host-includable: the engine (compiled by the C++ compiler) includes the op
// headers; only the .cu files hold device code.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace duet::backend::cuda {

using bf16 = __nv_bfloat16;

// Throws duet::Error "<what>: <CUDA error name>: <description>" unless ok.
void check(cudaError_t status, const char* what);
// After a kernel launch: the launch error, if any, named after the op.
inline void check_launch(const char* op) { check(cudaGetLastError(), op); }

// Blocks of `threads` covering n items.
inline unsigned grid_for(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

}  // namespace duet::backend::cuda
