#include "engine/memory_estimate.hpp"

#include <numeric>

#include "util/error.hpp"

namespace duet::engine {

size_t MemoryEstimate::total() const {
  return std::accumulate(parts.begin(), parts.end(), size_t{0}, [](size_t a, const auto& p) { return a + p.second; });
}

size_t MemoryEstimate::part(const std::string& name) const {
  for (const auto& [what, bytes] : parts)
    if (what == name) return bytes;
  return 0;
}

int64_t longest_fitting_row(const std::function<bool(int64_t tokens)>& fits) {
  constexpr int64_t kLimit = int64_t{1} << 22;  // a billion tokens: no limit worth naming
  int64_t lo = 0, hi = 1;                       // in steps of 256 tokens
  while (hi < kLimit && fits(hi * 256)) lo = hi, hi *= 2;
  if (hi >= kLimit) return lo * 256;
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    (fits(mid * 256) ? lo : hi) = mid;
  }
  return lo * 256;
}

int64_t longest_row_within(const model::ModelConfig& config, MemoryPlan plan, size_t bytes) {
  return longest_fitting_row([&](int64_t tokens) {
    plan.row_tokens = tokens, plan.row_targets = -1;
    return estimate_cuda_memory(config, plan).total() <= bytes;
  });
}

#ifndef DUET_WITH_CUDA
MemoryEstimate estimate_cuda_memory(const model::ModelConfig&, const MemoryPlan&) {
  fail("estimating GPU memory needs the CUDA engine's code, which this build lacks (nvcc was not found at configure "
       "time); rebuild on a machine with the CUDA toolkit");
}
#endif

}  // namespace duet::engine
