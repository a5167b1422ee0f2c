#pragma once
// Shared code of the CUDA op tests (test_ops_*.cpp): device buffers poisoned
// with NaN, bf16 conversions on the host, and the two acceptance criteria:
//   - bf16 outputs: max |gpu − oracle| ≤ 2 × max |naive − oracle| + slack,
//     where the oracle is the CPU kernel in double on the same bf16-rounded
//     inputs and `naive` the same computation done PyTorch-eager style (each
//     op's output rounded to bf16);
//   - fp32 outputs: |gpu − oracle| ≤ a per-element bound derived in the test.
// Every check prints one "[ops] ..." line with the measured errors.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backend/helpers.hpp"

namespace duet::test::ops {

using bf16 = __nv_bfloat16;

constexpr double kU32 = 0x1p-24;  // fp32 unit roundoff
constexpr double kU16 = 0x1p-8;   // bf16 unit roundoff (8 significant bits)

bool have_gpu();
#define DUET_OPS_REQUIRE_GPU() \
  if (!::duet::test::ops::have_gpu()) GTEST_SKIP() << "no CUDA device"

// Throws (fails the test) on a CUDA error.
void cuda_ok(cudaError_t status, const char* what);

// A device array of n T, filled with NaN bytes (0xFF) until written.
template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) {
    cuda_ok(cudaMalloc(&ptr_, bytes() ? bytes() : 1), "cudaMalloc");
    poison();
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { upload(host); }
  ~DeviceArray() { cudaFree(ptr_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* get() { return ptr_; }
  const T* get() const { return ptr_; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }
  void poison() { cuda_ok(cudaMemset(ptr_, 0xFF, bytes()), "poison"); }
  void upload(const std::vector<T>& host) {
    cuda_ok(cudaMemcpy(ptr_, host.data(), sizeof(T) * host.size(), cudaMemcpyHostToDevice), "upload");
  }
  std::vector<T> download() const {
    cuda_ok(cudaDeviceSynchronize(), "synchronize");
    std::vector<T> host(n_);
    cuda_ok(cudaMemcpy(host.data(), ptr_, bytes(), cudaMemcpyDeviceToHost), "download");
    return host;
  }

 private:
  T* ptr_ = nullptr;
  size_t n_ = 0;
};

// Values uniform in [lo, hi) rounded to bf16 (so exactly representable).
std::vector<double> random_bf16_values(std::mt19937_64& rng, size_t n, double lo = -1, double hi = 1);
double round_bf16(double x);  // to the nearest bf16 (via fp32, as the GPU rounds an fp32 result)
std::vector<bf16> to_bf16(const std::vector<double>& v);
std::vector<float> to_f32(const std::vector<double>& v);
std::vector<double> widen(const std::vector<bf16>& v);
std::vector<double> widen(const std::vector<float>& v);

// max |a − b| (NaN counts as infinite).
double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b);
double max_abs(const std::vector<double>& a);

// The bf16 criterion above, with slack relative to max |oracle|.
void expect_within_naive(const std::string& name, const std::vector<double>& gpu, const std::vector<double>& oracle,
                         const std::vector<double>& naive, double slack = 1e-6);

// |gpu − oracle| ≤ bound element-wise; prints the largest error/bound ratio.
void expect_within_bound(const std::string& name, const std::vector<double>& gpu, const std::vector<double>& oracle,
                         const std::vector<double>& bound);

// Bitwise equality of two runs (or of a copy).
template <typename T>
void expect_same_bits(const std::vector<T>& a, const std::vector<T>& b, const std::string& name) {
  ASSERT_EQ(a.size(), b.size()) << name;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), sizeof(T) * a.size()), 0) << name << " differs bitwise";
}

// Runs `body` and expects a duet::Error whose message contains `text`.
void expect_error(const std::function<void()>& body, const std::string& text);

}  // namespace duet::test::ops
