#pragma once
// Where a step's GPU time goes, by kind of op, from CUDA events recorded
// around each op on the engine's stream (duet bench --breakdown). Off by
// default: then a scope records nothing and costs a branch.
#include <array>
#include <cstddef>
#include <vector>

#include "backend/cuda/common.hpp"

namespace duet::engine::cuda {

enum class OpKind { matmul, attention, lm_head, elementwise, optimizer };
inline constexpr size_t kOpKinds = 5;
inline constexpr std::array<const char*, kOpKinds> kOpKindNames = {"matmul", "attention", "lm_head", "elementwise",
                                                                   "optimizer"};

class OpTimer {
 public:
  ~OpTimer();
  void enable(bool on) { enabled_ = on; }
  bool enabled() const { return enabled_; }

  class Scope {
   public:
    Scope(OpTimer* timer, OpKind kind, cudaStream_t stream);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    OpTimer* timer_;
    size_t index_ = 0;
    cudaStream_t stream_;
  };
  Scope scope(OpKind kind, cudaStream_t stream) { return Scope(enabled_ ? this : nullptr, kind, stream); }

  // After the stream has synchronised: adds the recorded intervals to the
  // totals and recycles their events.
  void collect();
  // Seconds per kind since the last take (collects first).
  std::array<double, kOpKinds> take();

 private:
  struct Interval {
    OpKind kind;
    cudaEvent_t start, stop;
  };
  bool enabled_ = false;
  std::vector<Interval> recorded_;
  std::vector<cudaEvent_t> free_;
  std::array<double, kOpKinds> totals_{};
  cudaEvent_t event();
};

}  // namespace duet::engine::cuda
