// LoRA forward and backward: two thin gemms each way around the rank-r bottleneck.
#include "backend/lora.hpp"

#include "backend/cpu/blas.hpp"
#include "backend/cpu/threading.hpp"

namespace duet::backend::cpu {

namespace {

// The adapter's input: x itself without dropout, else the masked and
// rescaled copy in `scratch`.
template <typename T>
const T* dropped_input(const LoraShape<T>& p) {
  if (p.dropout == 0) return p.x;
  const int64_t n = p.n_rows * p.in_features;
  const T keep_scale = static_cast<T>(1.0 / (1.0 - p.dropout));
#pragma omp parallel for schedule(static) if (parallel_worth(n))
  for (int64_t i = 0; i < n; ++i)
    p.scratch[i] = lora_dropout_keeps(p.dropout_key, static_cast<uint64_t>(i), p.dropout) ? p.x[i] * keep_scale : T(0);
  return p.scratch;
}

}  // namespace

template <typename T>
void lora_forward(const LoraParams<T>& p) {
  p.validate();
  const int64_t n = p.n_rows, in = p.in_features, out = p.out_features, r = p.rank;
  if (n == 0) return;
  const T* xd = dropped_input(p);
  T* u = p.scratch + n * in;  // [n, r] = xd A^T
  blas::gemm(false, true, n, r, in, T(1), xd, in, p.a, in, T(0), u, r);
  blas::gemm(false, true, n, out, r, static_cast<T>(p.scaling), u, r, p.b, r, T(1), p.y, out);
}

template <typename T>
void lora_backward(const LoraBackwardParams<T>& p) {
  p.validate();
  const int64_t n = p.n_rows, in = p.in_features, out = p.out_features, r = p.rank;
  if (n == 0) return;
  const T s = static_cast<T>(p.scaling);
  const T* xd = dropped_input(p);
  T* u = p.scratch + n * in;       // [n, r] = xd A^T, recomputed rather than kept
  T* du = u + n * r;               // [n, r] = s dy B
  blas::gemm(false, true, n, r, in, T(1), xd, in, p.a, in, T(0), u, r);
  blas::gemm(true, false, out, r, n, s, p.dy, out, u, r, T(1), p.db, r);    // dB += s dy^T u
  blas::gemm(false, false, n, r, out, s, p.dy, out, p.b, r, T(0), du, r);  // du = s dy B
  blas::gemm(true, false, r, in, n, T(1), du, r, xd, in, T(1), p.da, in);  // dA += du^T xd
  if (!p.dx) return;
  if (p.dropout == 0) {
    blas::gemm(false, false, n, in, r, T(1), du, r, p.a, in, T(1), p.dx, in);  // dx += du A
    return;
  }
  // d(xd) = du A into the scratch (xd is no longer needed), then through the mask.
  blas::gemm(false, false, n, in, r, T(1), du, r, p.a, in, T(0), p.scratch, in);
  const int64_t total = n * in;
  const T keep_scale = static_cast<T>(1.0 / (1.0 - p.dropout));
#pragma omp parallel for schedule(static) if (parallel_worth(total))
  for (int64_t i = 0; i < total; ++i)
    if (lora_dropout_keeps(p.dropout_key, static_cast<uint64_t>(i), p.dropout)) p.dx[i] += p.scratch[i] * keep_scale;
}

template void lora_forward<float>(const LoraParams<float>&);
template void lora_forward<double>(const LoraParams<double>&);
template void lora_backward<float>(const LoraBackwardParams<float>&);
template void lora_backward<double>(const LoraBackwardParams<double>&);

}  // namespace duet::backend::cpu
