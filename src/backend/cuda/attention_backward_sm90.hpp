#pragma once
// The Hopper backward (attention_backward_sm90.cu): the dK/dV and dQ passes
// with wgmma products, cp.async loads completing on mbarriers, a producer
// warpgroup and two consumer warpgroups, deterministic like the mma.sync
// passes. attention_backward() computes D_i = rowsum(dO∘O) and then runs these
// where attention_backward_uses_sm90() says so.
#include "backend/cuda/attention.hpp"

namespace duet::backend::cuda {

// Which passes attention_backward() runs for this head dim: the Hopper ones on
// a compute 9.0 device (head dims 64 and 128: both measured 1.1-1.8x the
// mma.sync passes, docs/attention-cuda.md), unless DUET_ATTENTION_BWD_SM90
// says otherwise: "0" turns them off ("1" forces them, as by default). Read
// at every call, so tests and benchmarks can compare both.
bool attention_backward_uses_sm90(int64_t head_dim);
// dQ, dK, dV of attention_backward (already checked by it), given
// delta = D_i ([n_tokens][n_q_heads] fp32, in the workspace).
void attention_backward_sm90(const AttentionBackward& p, const float* delta, cudaStream_t stream);

}  // namespace duet::backend::cuda
