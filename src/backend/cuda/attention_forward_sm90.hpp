#pragma once
// The Hopper forward (attention_forward_sm90.cu): wgmma products, tensor-copy
// (TMA) loads completing on mbarriers, a producer warpgroup and two consumer
// warpgroups. attention_forward() picks it by attention_forward_uses_sm90().
#include "backend/cuda/attention.hpp"

namespace duet::backend::cuda {

// Which forward attention_forward() runs for this head dim: the Hopper kernel
// on a compute 9.0 device at both head dims (measured 1.2-2.4x the mma.sync
// forward on the benchmark rows: docs/attention-cuda.md), unless
// DUET_ATTENTION_SM90 says otherwise: "1" forces it, "0" turns it off. Read
// at every call, so tests can compare both.
bool attention_forward_uses_sm90(int64_t head_dim);
// The current device is compute capability 9.0 (the kernel is sm_90a).
bool attention_sm90_supported();
// A Hopper kernel is chosen: the environment variable `variable` is "1"
// (forced on) or, unless it is "0", `by_default`; and the device is
// compute 9.0. Read at every call.
bool attention_sm90_selected(const char* variable, bool by_default);
// Same contract and outputs as attention_forward (o bf16, lse fp32).
void attention_forward_sm90(const AttentionForward& p, cudaStream_t stream);

}  // namespace duet::backend::cuda
