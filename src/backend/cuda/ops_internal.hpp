#pragma once
// Internal to the CUDA ops (not for the engine): argument validation, kept in
// host-compiled code (ops_validate.cpp) because nvcc cannot compile fmt's
// compile-time format checks, and the launchers that several ops share.
#include <cstdint>

#include "backend/cuda/adamw.hpp"
#include "backend/cuda/common.hpp"
#include "backend/cuda/layers.hpp"
#include "backend/cuda/lora.hpp"
#include "backend/cuda/target_logprobs.hpp"

namespace duet::backend::cuda::detail {

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// Each throws duet::Error naming the op and the field, as backend::*::validate().
void validate(const EmbeddingForward& p);
void validate(const EmbeddingBackward& p);
void validate(const AddRmsNormForward& p);
void validate(const RmsNormBackward& p);
void validate(const Rope& p);
void validate(const SwiGluForward& p);
void validate(const SwiGluBackward& p);
void validate(const BiasBackward& p);
void validate(const LoraDropoutForward& p);
void validate(const LoraDropoutBackward& p);
void validate(const TargetLogprobsForward& p);
void validate(const TargetLogprobsBackward& p);
void validate(const AdamWStep& p);
void validate_grad_norm(const float* grads, int64_t n, const double* partials, const double* norm);
// `in` is checked only when needs_in (fill has no input).
void validate_conversion(const char* op, const void* in, bool needs_in, const void* out, int64_t n);

// Row blocks of a column reduction over n_rows rows: a fixed function of
// n_rows, so the partition (and the bits of the result) never changes.
int64_t column_reduction_chunks(int64_t n_rows);

// out[c] += Σ_{chunk in order} partials[chunk * dim + c], c < dim.
void sum_partials_add(const float* partials, int64_t n_chunks, int64_t dim, float* out, cudaStream_t stream,
                      const char* op);

// Grouped deterministic scatter-add of rows: for each group g,
// dst[key[order[group_start[g]]]] += Σ_{i in group, in order} src[order[i]]
// (rows of `dim` floats; the sum in fp32, added once).
void grouped_rows_add(const int32_t* order, const int32_t* group_start, int64_t n_groups, const uint32_t* keys,
                      const float* src, float* dst, int64_t dim, cudaStream_t stream, const char* op);
void grouped_rows_add(const int32_t* order, const int32_t* group_start, int64_t n_groups, const int32_t* keys,
                      const float* src, float* dst, int64_t dim, cudaStream_t stream, const char* op);

}  // namespace duet::backend::cuda::detail

namespace duet::backend::cuda::detail {

// out[t] = table[rows[t]] for rows of `dim` bf16 (the embedding lookup and the
// LM head's gather of target rows).
void gather_rows(const uint32_t* rows, const bf16* table, bf16* out, int64_t n, int64_t dim, cudaStream_t stream,
                 const char* op);
void gather_rows(const int32_t* rows, const bf16* table, bf16* out, int64_t n, int64_t dim, cudaStream_t stream,
                 const char* op);

}  // namespace duet::backend::cuda::detail
