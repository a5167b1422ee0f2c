#include "dist/nccl_communicator.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include <cuda_runtime.h>
#include <nccl.h>

#include "dist/shard_layout.hpp"
#include "dist/tcp_exchange.hpp"
#include "util/error.hpp"

namespace duet::dist {

namespace {

void check_cuda(cudaError_t e, const char* call) {
  if (e != cudaSuccess) fail("NCCL communicator: {} failed: {}", call, cudaGetErrorString(e));
}

void check_nccl(ncclResult_t r, const char* call) {
  if (r != ncclSuccess) fail("NCCL: {} failed: {}", call, ncclGetErrorString(r));
}

bool on_device(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();  // clear it: plain host memory on old drivers
    return false;
  }
  return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

}  // namespace

struct NcclCommunicator::State {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  double timeout_seconds = 600;
  bool unbounded = false;  // barrier_unbounded: no time limit on this wait
  void* scratch = nullptr;  // device staging for host buffers
  size_t scratch_bytes = 0;

  void* staging(size_t bytes) {
    if (bytes > scratch_bytes) {
      if (scratch) check_cuda(cudaFree(scratch), "cudaFree");
      check_cuda(cudaMalloc(&scratch, bytes), "cudaMalloc (NCCL staging)");
      scratch_bytes = bytes;
    }
    return scratch;
  }

  // Waits for the stream by polling, so that a peer that never joins, or an
  // NCCL error, ends the wait with a message instead of a hang.
  void wait(const char* what) {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      const cudaError_t e = cudaStreamQuery(stream);
      if (e == cudaSuccess) return;
      if (e != cudaErrorNotReady) check_cuda(e, what);
      ncclResult_t async = ncclSuccess;
      check_nccl(ncclCommGetAsyncError(comm, &async), "ncclCommGetAsyncError");
      if (async != ncclSuccess && async != ncclInProgress) {
        ncclCommAbort(comm);
        comm = nullptr;
        fail("NCCL: {} failed: {}", what, ncclGetErrorString(async));
      }
      if (!unbounded &&
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > timeout_seconds) {
        ncclCommAbort(comm);
        comm = nullptr;
        fail("NCCL: {} waited more than {} s for the other ranks (--nccl-timeout): another rank has failed or hangs",
             what, timeout_seconds);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
};

NcclCommunicator::NcclCommunicator(const Launch& launch, std::unique_ptr<Communicator> id_channel,
                                   double timeout_seconds)
    : state_(std::make_unique<State>()), id_channel_(std::move(id_channel)), rank_(launch.rank), size_(launch.size) {
  state_->timeout_seconds = timeout_seconds;
  int devices = 0;
  check_cuda(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
  if (launch.local_rank >= devices)
    fail("local rank {} has no GPU: this node has {} (start at most one rank per GPU)", launch.local_rank, devices);
  check_cuda(cudaSetDevice(launch.local_rank), "cudaSetDevice");
  ncclUniqueId id{};
  if (rank_ == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  if (id_channel_) {
    id_channel_->broadcast(&id, sizeof id, 0);
  } else {
    std::vector<char> bytes(reinterpret_cast<const char*>(&id), reinterpret_cast<const char*>(&id) + sizeof id);
    bytes = tcp_broadcast({launch.master_addr, launch.master_port, rank_, size_, timeout_seconds}, bytes);
    if (bytes.size() != sizeof id) fail("NCCL id exchange: received {} bytes, expected {}", bytes.size(), sizeof id);
    std::memcpy(&id, bytes.data(), sizeof id);
  }
  check_cuda(cudaStreamCreateWithFlags(&state_->stream, cudaStreamNonBlocking), "cudaStreamCreate");
  check_nccl(ncclCommInitRank(&state_->comm, size_, id, rank_), "ncclCommInitRank");
}

NcclCommunicator::~NcclCommunicator() {
  if (state_->comm) ncclCommDestroy(state_->comm);  // before id_channel_ finalises MPI
  if (state_->scratch) cudaFree(state_->scratch);
  if (state_->stream) cudaStreamDestroy(state_->stream);
}

namespace {

// Runs `op` on device memory: `data` itself, or a staged copy of host memory.
template <typename Op>
void on_device_copy(void* data, size_t bytes, void* scratch, cudaStream_t stream, Op&& op) {
  if (on_device(data)) return op(data);
  check_cuda(cudaMemcpyAsync(scratch, data, bytes, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync");
  op(scratch);
  check_cuda(cudaMemcpyAsync(data, scratch, bytes, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
}

}  // namespace

void NcclCommunicator::all_reduce(void* data, size_t count, int type, size_t element_bytes) {
  const size_t bytes = count * element_bytes;
  void* scratch = on_device(data) ? nullptr : state_->staging(bytes);
  on_device_copy(data, bytes, scratch, state_->stream, [&](void* p) {
    check_nccl(ncclAllReduce(p, p, count, static_cast<ncclDataType_t>(type), ncclSum, state_->comm, state_->stream),
               "ncclAllReduce");
  });
  state_->wait("all_reduce");
}

void NcclCommunicator::all_reduce_sum(float* data, size_t count) { all_reduce(data, count, ncclFloat32, sizeof(float)); }

void NcclCommunicator::all_reduce_sum(double* data, size_t count) {
  all_reduce(data, count, ncclFloat64, sizeof(double));
}

void NcclCommunicator::reduce_scatter_sum(const float* send, float* shard, size_t count) {
  if (!on_device(send) || !on_device(shard))
    fail("internal: NCCL reduce_scatter needs device buffers (the engine's gradients)");
  const ShardLayout layout(count, size_);
  if (layout.chunk * static_cast<size_t>(size_) == count) {
    check_nccl(ncclReduceScatter(send, shard, layout.chunk, ncclFloat32, ncclSum, state_->comm, state_->stream),
               "ncclReduceScatter");
  } else {
    // Uneven shards: one reduce per owner (pad buffers to a multiple of the
    // rank count to get the single ncclReduceScatter above).
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < size_; ++r)
      check_nccl(ncclReduce(send + layout.begin(r), shard, layout.size(r), ncclFloat32, ncclSum, r, state_->comm,
                            state_->stream),
                 "ncclReduce");
    check_nccl(ncclGroupEnd(), "ncclGroupEnd");
  }
  state_->wait("reduce_scatter");
}

void NcclCommunicator::all_gather(float* data, size_t count) {
  if (!on_device(data)) fail("internal: NCCL all_gather needs a device buffer (the engine's weights)");
  const ShardLayout layout(count, size_);
  if (layout.chunk * static_cast<size_t>(size_) == count) {
    check_nccl(ncclAllGather(data + layout.begin(rank_), data, layout.chunk, ncclFloat32, state_->comm,
                             state_->stream),
               "ncclAllGather");
  } else {
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < size_; ++r)
      check_nccl(ncclBroadcast(data + layout.begin(r), data + layout.begin(r), layout.size(r), ncclFloat32, r,
                               state_->comm, state_->stream),
                 "ncclBroadcast");
    check_nccl(ncclGroupEnd(), "ncclGroupEnd");
  }
  state_->wait("all_gather");
}

void NcclCommunicator::broadcast(void* data, size_t bytes, int root) {
  void* scratch = on_device(data) ? nullptr : state_->staging(bytes);
  on_device_copy(data, bytes, scratch, state_->stream, [&](void* p) {
    check_nccl(ncclBroadcast(p, p, bytes, ncclUint8, root, state_->comm, state_->stream), "ncclBroadcast");
  });
  state_->wait("broadcast");
}

void* NcclCommunicator::stream() { return state_->stream; }

void NcclCommunicator::reduce_sum(std::span<const Part> parts) {
  if (parts.empty()) return;
  check_nccl(ncclGroupStart(), "ncclGroupStart");
  for (const Part& p : parts)
    check_nccl(ncclReduce(p.data, p.data, p.count, ncclFloat32, ncclSum, p.root, state_->comm, state_->stream),
               "ncclReduce");
  check_nccl(ncclGroupEnd(), "ncclGroupEnd");
}

void NcclCommunicator::broadcast(std::span<const Part> parts) {
  if (parts.empty()) return;
  check_nccl(ncclGroupStart(), "ncclGroupStart");
  for (const Part& p : parts)
    check_nccl(ncclBroadcast(p.data, p.data, p.count, ncclUint8, p.root, state_->comm, state_->stream),
               "ncclBroadcast");
  check_nccl(ncclGroupEnd(), "ncclGroupEnd");
}

void NcclCommunicator::all_reduce_sum(std::span<const Part> parts) {
  if (parts.empty()) return;
  check_nccl(ncclGroupStart(), "ncclGroupStart");
  for (const Part& p : parts)
    check_nccl(ncclAllReduce(p.data, p.data, p.count, ncclFloat32, ncclSum, state_->comm, state_->stream),
               "ncclAllReduce");
  check_nccl(ncclGroupEnd(), "ncclGroupEnd");
}

void NcclCommunicator::wait(const char* what) { state_->wait(what); }

void NcclCommunicator::barrier() {
  float one = 1;
  all_reduce_sum(&one, 1);  // NCCL has no barrier: a one-element all-reduce is one
}

void NcclCommunicator::barrier_unbounded() {
  state_->unbounded = true;
  try {
    barrier();
  } catch (...) {
    state_->unbounded = false;
    throw;
  }
  state_->unbounded = false;
}

void NcclCommunicator::abort(int code) {
  if (state_->comm) ncclCommAbort(state_->comm);
  std::_Exit(code);
}

}  // namespace duet::dist
