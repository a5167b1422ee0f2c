#pragma once
// The optimizer over the whole flat parameter buffer in one pass (fp32 master
// weights, fp32 gradients and moments, bf16 working weights rewritten from the
// master), with clipping by the global gradient norm computed on the device:
// no host synchronisation between the norm and the update.
#include <cstdint>

#include "backend/cuda/common.hpp"

namespace duet::backend::cuda {

// sqrt(Σ g²) over grads[0, n) in double, in a fixed partition and order (the
// same bits every run). Writes *norm (device). `partials` is scratch of
// grad_norm_partials(n) doubles.
int64_t grad_norm_partials(int64_t n);
void global_grad_norm(const float* grads, int64_t n, double* partials, double* norm, cudaStream_t stream);
// The same sum without the square root (one rank's share of a sharded
// gradient's norm), and the norm from such sums once summed over the ranks.
void grad_sum_squares(const float* grads, int64_t n, double* partials, double* sum, cudaStream_t stream);
void norm_from_sum_squares(double* value, cudaStream_t stream);  // in place: sqrt

// Parameters grouped in slots (tensors) for weight decay: slot s covers
// [slot_offsets[s], slot_offsets[s + 1]) and decays iff slot_decay[s] != 0.
struct AdamWStep {
  float* master = nullptr;       // [n], updated
  bf16* weights = nullptr;       // [n], rewritten = bf16(master); null: none
  const float* grads = nullptr;  // [n]
  float* m = nullptr;            // [n]
  float* v = nullptr;            // [n]
  int64_t n = 0;
  const int64_t* slot_offsets = nullptr;  // [n_slots + 1], device
  const uint8_t* slot_decay = nullptr;    // [n_slots], device
  int64_t n_slots = 0;
  const double* grad_norm = nullptr;  // device: clip coefficient min(1, max_norm / (norm + 1e-6))
  double max_norm = 0;                // <= 0: no clipping
  double lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  int64_t step = 0;  // 1 for the first step
};
void adamw_step(const AdamWStep& p, cudaStream_t stream);

}  // namespace duet::backend::cuda
