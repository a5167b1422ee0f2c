// The NCCL communicator with one rank on the GPU machine (label cuda): every
// collective runs through NCCL on device buffers and on host buffers (staged),
// and gives the one-rank values. Several ranks need several GPUs (NCCL refuses
// two ranks on one device): the multi-GPU runs belong to the scaling work.
#include <gtest/gtest.h>

#include <vector>

#include <cuda_runtime.h>

#include "dist/nccl_communicator.hpp"
#include "dist/shard_layout.hpp"

namespace duet::dist {
namespace {

template <typename T>
struct DeviceBuffer {
  T* data = nullptr;
  size_t n = 0;
  explicit DeviceBuffer(const std::vector<T>& host) : n(host.size()) {
    EXPECT_EQ(cudaMalloc(&data, n * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(data, host.data(), n * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(data); }
  std::vector<T> host() const {
    std::vector<T> out(n);
    EXPECT_EQ(cudaMemcpy(out.data(), data, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }
};

TEST(NcclCommunicator, OneRankCollectives) {
  Launch one;  // rank 0 of 1: no id exchange
  NcclCommunicator comm(one, nullptr, 60);
  EXPECT_EQ(comm.size(), 1);
  EXPECT_EQ(comm.backend(), "nccl");

  const std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f};
  DeviceBuffer<float> d(values);
  comm.all_reduce_sum(d.data, d.n);
  EXPECT_EQ(d.host(), values);

  std::vector<double> host = {0.25, -8.0};
  comm.all_reduce_sum(host.data(), host.size());  // host memory, staged through the device
  EXPECT_EQ(host, (std::vector<double>{0.25, -8.0}));

  DeviceBuffer<float> shard(std::vector<float>(values.size(), 0.0f));
  comm.reduce_scatter_sum(d.data, shard.data, d.n);
  EXPECT_EQ(shard.host(), values);
  comm.all_gather(d.data, d.n);
  EXPECT_EQ(d.host(), values);

  int word = 12345;
  comm.broadcast(&word, sizeof word, 0);
  EXPECT_EQ(word, 12345);
  comm.barrier();
}

}  // namespace
}  // namespace duet::dist
