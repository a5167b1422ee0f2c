#pragma once
// Residual add, y += x. Its backward is the identity: the residual stream's
// gradient flows on unchanged and is also added into the branch's input
// gradient, which is this same op (d_stream += d_branch_input).
#include <cstdint>

#include "backend/common.hpp"

namespace duet::backend {

template <typename T>
struct ResidualAddParams {
  T* y = nullptr;        // [n], accumulated (+=)
  const T* x = nullptr;  // [n]
  int64_t n = 0;

  void validate() const {
    using namespace detail;
    require_non_negative("residual add", "n", n);
    require_data("residual add", "y", y, n);
    require_data("residual add", "x", x, n);
  }
};

namespace cpu {
template <typename T>
void residual_add(const ResidualAddParams<T>& p);
}  // namespace cpu

}  // namespace duet::backend
