#pragma once
// The collectives a ZeRO buffer of the CUDA engine runs (ShardedGradients'
// reduces, ShardedWeights' gathers): NCCL's queued device collectives and
// their stream, or, for one rank without NCCL (the single-process
// communicator), none: the buffer's own copies and adds then run on the
// compute stream and nothing is sent.
#include <cuda_runtime.h>

#include "backend/cuda/common.hpp"
#include "dist/communicator.hpp"
#include "util/error.hpp"

namespace duet::engine::cuda {

class ZeroCollectives {
 public:
  // `who` names the stage in messages ("ZeRO-2"). Fails for several ranks without NCCL.
  void bind(dist::Communicator& comm, const char* who) {
    if (!comm.device() && comm.size() > 1)
      fail("internal: {} on the CUDA engine needs the NCCL communicator for {} ranks (got {})", who, comm.size(),
           comm.backend());
    comm_ = &comm, device_ = comm.device(), who_ = who;
  }
  bool bound() const { return comm_ != nullptr; }
  dist::DeviceCollectives* device() const { return device_; }  // null: one rank, nothing to send
  // NCCL's stream, or `compute` with one rank.
  cudaStream_t stream(cudaStream_t compute) const {
    if (!comm_) fail("internal: a {} CUDA engine's collectives before enable_data_parallel", who_);
    return device_ ? static_cast<cudaStream_t>(device_->stream()) : compute;
  }
  // stream(compute), ordered behind everything `compute` has queued so far
  // (`event` recorded there and waited for on it).
  cudaStream_t after(cudaStream_t compute, cudaEvent_t event) const {
    const cudaStream_t c = stream(compute);
    backend::cuda::check(cudaEventRecord(event, compute), "recording the compute stream's work");
    backend::cuda::check(cudaStreamWaitEvent(c, event, 0), "ordering a collective behind it");
    return c;
  }

 private:
  const char* who_ = "ZeRO";
  dist::Communicator* comm_ = nullptr;
  dist::DeviceCollectives* device_ = nullptr;
};

}  // namespace duet::engine::cuda
