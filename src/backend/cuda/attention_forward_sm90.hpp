#pragma once
// The Hopper forward (attention_forward_sm90.cu): wgmma products, cp.async
// loads completing on mbarriers, a producer warpgroup and two consumer
// warpgroups. attention_forward() uses it only when DUET_ATTENTION_SM90=1 and
// the device is compute capability 9.0; tests call it directly.
#include "backend/cuda/attention.hpp"

namespace duet::backend::cuda {

// DUET_ATTENTION_SM90=1 in the environment (read at every call).
bool attention_sm90_requested();
// The current device is compute capability 9.0 (the kernel is sm_90a).
bool attention_sm90_supported();
// Same contract and outputs as attention_forward (o bf16, lse fp32).
void attention_forward_sm90(const AttentionForward& p, cudaStream_t stream);

}  // namespace duet::backend::cuda
