// y += x.
#include "backend/residual.hpp"
#include "backend/cpu/threading.hpp"

namespace duet::backend::cpu {

template <typename T>
void residual_add(const ResidualAddParams<T>& p) {
  p.validate();
#pragma omp parallel for schedule(static) if (parallel_worth(p.n))
  for (int64_t i = 0; i < p.n; ++i) p.y[i] += p.x[i];
}

template void residual_add<float>(const ResidualAddParams<float>&);
template void residual_add<double>(const ResidualAddParams<double>&);

}  // namespace duet::backend::cpu
