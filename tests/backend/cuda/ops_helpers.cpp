#include "backend/cuda/ops_helpers.hpp"

#include <cmath>
#include <cstdio>
#include <limits>

#include "util/error.hpp"

namespace duet::test::ops {

bool have_gpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

void cuda_ok(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
}

double round_bf16(double x) { return static_cast<double>(__bfloat162float(__float2bfloat16_rn(static_cast<float>(x)))); }

std::vector<double> random_bf16_values(std::mt19937_64& rng, size_t n, double lo, double hi) {
  std::vector<double> v = random_values(rng, n, lo, hi);
  for (double& x : v) x = round_bf16(x);
  return v;
}

std::vector<bf16> to_bf16(const std::vector<double>& v) {
  std::vector<bf16> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = __float2bfloat16_rn(static_cast<float>(v[i]));
  return out;
}

std::vector<float> to_f32(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

std::vector<double> widen(const std::vector<bf16>& v) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = __bfloat162float(v[i]);
  return out;
}

std::vector<double> widen(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double d = std::abs(a[i] - b[i]);
    if (!(d <= m)) m = std::isnan(d) ? std::numeric_limits<double>::infinity() : d;
  }
  return a.size() == b.size() ? m : std::numeric_limits<double>::infinity();
}

double max_abs(const std::vector<double>& a) {
  double m = 0;
  for (double x : a) m = std::max(m, std::abs(x));
  return m;
}

void expect_within_naive(const std::string& name, const std::vector<double>& gpu, const std::vector<double>& oracle,
                         const std::vector<double>& naive, double slack) {
  const double err = max_abs_diff(gpu, oracle), naive_err = max_abs_diff(naive, oracle);
  const double limit = 2 * naive_err + slack * max_abs(oracle);
  std::printf("[ops] %-44s max err %.3e  naive bf16 %.3e  ratio %.2f\n", name.c_str(), err, naive_err,
              naive_err > 0 ? err / naive_err : 0.0);
  EXPECT_LE(err, limit) << name << ": GPU max error " << err << " vs naive bf16 " << naive_err;
}

void expect_within_bound(const std::string& name, const std::vector<double>& gpu, const std::vector<double>& oracle,
                         const std::vector<double>& bound) {
  ASSERT_EQ(gpu.size(), oracle.size()) << name;
  ASSERT_EQ(gpu.size(), bound.size()) << name;
  double worst = 0, max_err = 0;
  size_t bad = 0;
  for (size_t i = 0; i < gpu.size(); ++i) {
    const double err = std::abs(gpu[i] - oracle[i]);
    const bool ok = err <= bound[i];  // false for NaN
    if (!ok && bad++ < 5)
      ADD_FAILURE() << name << "[" << i << "] = " << gpu[i] << ", expected " << oracle[i] << " (error " << err
                    << ", bound " << bound[i] << ")";
    if (std::isnan(err)) continue;
    max_err = std::max(max_err, err);
    if (bound[i] > 0) worst = std::max(worst, err / bound[i]);
  }
  std::printf("[ops] %-44s max err %.3e  max err/bound %.3f\n", name.c_str(), max_err, worst);
  EXPECT_EQ(bad, 0u) << name << ": " << bad << " of " << gpu.size() << " elements beyond the bound";
}

void expect_error(const std::function<void()>& body, const std::string& text) {
  try {
    body();
    ADD_FAILURE() << "expected an error containing \"" << text << "\"";
  } catch (const duet::Error& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

}  // namespace duet::test::ops
