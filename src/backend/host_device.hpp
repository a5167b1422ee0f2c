#pragma once
// Functions the CPU ops and the CUDA kernels share, so both compute exactly
// the same thing (tile classes, visibility, dropout masks): plain inline code,
// marked __host__ __device__ when nvcc compiles it.
#if defined(__CUDACC__)
#define DUET_HOST_DEVICE __host__ __device__
#else
#define DUET_HOST_DEVICE
#endif
