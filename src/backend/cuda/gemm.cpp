// Row-major products through cuBLASLt (column-major): the row-major D [m, n]
// is the column-major Dᵀ [n, m], so we ask cuBLASLt for
//   Dᵀ = op(B)ᵀ · op(A)ᵀ
// with B as its first operand and A as its second. A row-major matrix stored
// [r, c] with row stride ld is the column-major [c, r] with the same ld, which
// fixes each operand's transpose flag below. The bias epilogue adds a vector
// along the rows of the column-major D, i.e. per column n of our row-major D.
#include "backend/cuda/gemm.hpp"

#include <cublasLt.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <map>
#include <sstream>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "backend/common.hpp"
#include "util/error.hpp"

namespace duet::backend::cuda {

namespace {

void check_lt(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) fail("gemm: {}: cuBLASLt status {}", what, static_cast<int>(status));
}

bool aligned(const void* p, uintptr_t bytes) { return (reinterpret_cast<uintptr_t>(p) % bytes) == 0; }

// The largest power of two (up to 16) dividing the address.
int32_t alignment_of(const void* p) {
  int32_t a = 16;
  while (a > 1 && !aligned(p, static_cast<uintptr_t>(a))) a /= 2;
  return a;
}

int64_t packed_or(int64_t ld, int64_t cols) { return ld ? ld : cols; }

}  // namespace

void GemmParams::validate() const {
  using namespace detail;
  const char* op = "gemm";
  require_non_negative(op, "m", m);
  require_non_negative(op, "n", n);
  require_non_negative(op, "k", k);
  if (m == 0 || n == 0) return;
  require_positive(op, "k", k);  // an empty sum would be beta * d alone: no caller needs it
  const int64_t a_cols = a_trans ? m : k, a_rows = a_trans ? k : m;
  const int64_t b_cols = b_trans ? k : n, b_rows = b_trans ? n : k;
  const int64_t lda_ = packed_or(lda, a_cols), ldb_ = packed_or(ldb, b_cols), ldd_ = packed_or(ldd, n);
  require_stride(op, "lda", lda_, a_cols);
  require_stride(op, "ldb", ldb_, b_cols);
  require_stride(op, "ldd", ldd_, n);
  require_data(op, "d", d, m * n);
  require_data(op, "a", a, a_rows * a_cols);
  require_data(op, "b", b, b_rows * b_cols);
  // 16-byte rows and bases: what the tensor-core kernels need (8 bf16, 4 fp32).
  const int64_t d_per16 = d_type == DType::BF16 ? 8 : 4;
  if (lda_ % 8) fail("gemm: lda ({}) must be a multiple of 8 elements (16-byte rows)", lda_);
  if (ldb_ % 8) fail("gemm: ldb ({}) must be a multiple of 8 elements (16-byte rows)", ldb_);
  if (ldd_ % d_per16) fail("gemm: ldd ({}) must be a multiple of {} elements (16-byte rows)", ldd_, d_per16);
  if (!aligned(a, 16)) fail("gemm: a must be 16-byte aligned");
  if (!aligned(b, 16)) fail("gemm: b must be 16-byte aligned");
  if (!aligned(d, 16)) fail("gemm: d must be 16-byte aligned");
  if (bias && d_type != DType::BF16) fail("gemm: bias needs a bf16 d (the epilogue adds a bf16 bias to a bf16 output)");
}

namespace {

// One cached plan per distinct product: descriptors, layouts and the chosen algorithm.
struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool tuned = false;  // algo is a tuned bucket's choice
};

void destroy(Plan& plan) {
  cublasLtMatrixLayoutDestroy(plan.a);
  cublasLtMatrixLayoutDestroy(plan.b);
  cublasLtMatrixLayoutDestroy(plan.d);
  cublasLtMatmulDescDestroy(plan.desc);
}

// The shape's strides, 0 resolved to tightly packed.
struct Strides {
  int64_t lda, ldb, ldd;
  explicit Strides(const GemmParams& p)
      : lda(packed_or(p.lda, p.a_trans ? p.m : p.k)), ldb(packed_or(p.ldb, p.b_trans ? p.k : p.n)),
        ldd(packed_or(p.ldd, p.n)) {}
};

// The smallest bucket end >= x: powers of two, and with two buckets per
// octave also 1.5 times them (3, 6, 12, ... 6144, 12288).
int64_t bucket_end(int64_t x, int per_octave) {
  if (x <= 1) return 1;
  const int64_t p = static_cast<int64_t>(std::bit_floor(static_cast<uint64_t>(x)));
  if (p == x) return x;
  if (per_octave == 2 && p >= 2 && x <= p + p / 2) return p + p / 2;
  return 2 * p;
}

// What a tuned choice applies to: the product kind and the buckets of m and
// k. The engine's token dimension (m of the forward and input-gradient
// products, k of the weight gradients) changes with every row; a bucket's
// choice serves all its token counts.
using TuneKey = std::tuple<int64_t, int64_t, int64_t, bool, bool, int, bool>;

// The cuBLASLt version and the GPU a tuned choice was timed on.
std::string tuning_origin() {
  int device = 0;
  cudaDeviceProp prop{};
  check(cudaGetDevice(&device), "gemm tuning");
  check(cudaGetDeviceProperties(&prop, device), "gemm tuning");
  std::string name = prop.name;
  std::replace(name.begin(), name.end(), ' ', '_');
  return fmt::format("cublasLt {} {}", cublasLtGetVersion(), name);
}

}  // namespace

struct Gemm::Impl {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  // m, n, k, lda, ldb, ldd, a_trans, b_trans, d_type, bias alignment (0 = no bias)
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, int, int32_t>;
  std::map<Key, Plan> plans;
  std::map<TuneKey, cublasLtMatmulAlgo_t> tuned;
  int64_t untuned_runs = 0;
  int buckets_per_octave = 2;

  TuneKey tune_key(const GemmParams& p) const {
    return {bucket_end(p.m, buckets_per_octave), p.n, bucket_end(p.k, buckets_per_octave), p.a_trans, p.b_trans,
            static_cast<int>(p.d_type), p.bias != nullptr};
  }

  ~Impl() {
    for (auto& [key, plan] : plans) destroy(plan);
    if (workspace) cudaFree(workspace);
    if (handle) cublasLtDestroy(handle);
  }

  // Descriptors and layouts of the product (no algorithm yet).
  Plan describe(const GemmParams& p, const Strides& ld) {
    Plan plan;
    const cudaDataType_t d_type = p.d_type == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F;
    check_lt(cublasLtMatmulDescCreate(&plan.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul descriptor");
    // First operand (cuBLASLt's A) is our B, second (cuBLASLt's B) is our A.
    const cublasOperation_t op_first = p.b_trans ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_second = p.a_trans ? CUBLAS_OP_T : CUBLAS_OP_N;
    check_lt(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)),
             "transa");
    check_lt(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)),
             "transb");
    if (p.bias) {
      const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
      const int32_t bias_type = CUDA_R_16BF;
      check_lt(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)),
               "bias epilogue");
      check_lt(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                              sizeof(bias_type)),
               "bias type");
      check_lt(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof(p.bias)),
               "bias pointer");
    }
    // Column-major shapes: op(first) is [n, k], op(second) is [k, m], D is [n, m].
    const uint64_t first_rows = p.b_trans ? p.k : p.n, first_cols = p.b_trans ? p.n : p.k;
    const uint64_t second_rows = p.a_trans ? p.m : p.k, second_cols = p.a_trans ? p.k : p.m;
    check_lt(cublasLtMatrixLayoutCreate(&plan.a, CUDA_R_16BF, first_rows, first_cols, ld.ldb), "layout of b");
    check_lt(cublasLtMatrixLayoutCreate(&plan.b, CUDA_R_16BF, second_rows, second_cols, ld.lda), "layout of a");
    check_lt(cublasLtMatrixLayoutCreate(&plan.d, d_type, p.n, p.m, ld.ldd), "layout of d");
    return plan;
  }

  // The heuristic's first `count` algorithms for the plan (at least one, or
  // the plan is destroyed and the call fails).
  std::vector<cublasLtMatmulHeuristicResult_t> candidates(Plan& plan, const GemmParams& p, int count) {
    cublasLtMatmulPreference_t pref = nullptr;
    check_lt(cublasLtMatmulPreferenceCreate(&pref), "preference");
    const uint32_t align = 16;  // validate() guarantees 16-byte bases, so any such pointer may come later
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                         sizeof(workspace_bytes));
    for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
      cublasLtMatmulPreferenceSetAttribute(pref, attr, &align, sizeof(align));
    std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<size_t>(std::max(1, count)));
    int found = 0;
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle, plan.desc, plan.a, plan.b, plan.d, plan.d, pref,
                                                             static_cast<int>(results.size()), results.data(), &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
      destroy(plan);
      fail("gemm: cuBLASLt has no algorithm for m={} n={} k={} a_trans={} b_trans={} d={}{} (status {})", p.m, p.n,
           p.k, p.a_trans, p.b_trans, p.d_type == DType::BF16 ? "bf16" : "fp32", p.bias ? " with bias" : "",
           static_cast<int>(st));
    }
    results.resize(static_cast<size_t>(found));
    return results;
  }

  // Whether cuBLASLt runs `algo` on the plan's shape within the workspace.
  bool accepts(const Plan& plan, const cublasLtMatmulAlgo_t& algo) {
    cublasLtMatmulHeuristicResult_t result{};
    return cublasLtMatmulAlgoCheck(handle, plan.desc, plan.a, plan.b, plan.d, plan.d, &algo, &result) ==
               CUBLAS_STATUS_SUCCESS &&
           result.workspaceSize <= workspace_bytes;
  }

  Plan& plan_for(const Key& key, const GemmParams& p, const Strides& ld) {
    auto it = plans.find(key);
    if (it != plans.end()) return it->second;
    Plan plan = describe(p, ld);
    plan.algo = candidates(plan, p, 1)[0].algo;
    if (const auto t = tuned.find(tune_key(p)); t != tuned.end() && accepts(plan, t->second))
      plan.algo = t->second, plan.tuned = true;
    return plans.emplace(key, plan).first->second;
  }

  // Median of 5 timed runs (after one to warm up) of `algo` on the plan,
  // reading a and b and writing d (beta 0).
  float time_algo(const Plan& plan, const cublasLtMatmulAlgo_t& algo, const GemmParams& p, cudaStream_t stream) {
    const float zero = 0.0f;
    cudaEvent_t start, stop;
    check(cudaEventCreate(&start), "gemm tuning");
    check(cudaEventCreate(&stop), "gemm tuning");
    std::vector<float> ms;
    for (int r = 0; r < 6; ++r) {
      check(cudaEventRecord(start, stream), "gemm tuning");
      const cublasStatus_t st = cublasLtMatmul(handle, plan.desc, &p.alpha, p.b, plan.a, p.a, plan.b, &zero, p.d,
                                               plan.d, p.d, plan.d, &algo, workspace, workspace_bytes, stream);
      check(cudaEventRecord(stop, stream), "gemm tuning");
      check(cudaEventSynchronize(stop), "gemm tuning");
      float t = 0;
      check(cudaEventElapsedTime(&t, start, stop), "gemm tuning");
      if (st != CUBLAS_STATUS_SUCCESS) t = 1e30f;
      if (r > 0) ms.push_back(t);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  }
};

Gemm::Gemm(size_t workspace_bytes, int buckets_per_octave) : impl_(std::make_unique<Impl>()) {
  if (buckets_per_octave != 1 && buckets_per_octave != 2)
    fail("gemm: buckets_per_octave must be 1 or 2, not {}", buckets_per_octave);
  check_lt(cublasLtCreate(&impl_->handle), "create handle");
  impl_->workspace_bytes = workspace_bytes;
  impl_->buckets_per_octave = buckets_per_octave;
  if (workspace_bytes) check(cudaMalloc(&impl_->workspace, workspace_bytes), "gemm workspace");
}

Gemm::~Gemm() = default;

bool Gemm::tune(const std::vector<GemmParams>& shapes, int candidates, cudaStream_t stream) {
  if (candidates < 2) return true;
  // One scratch block holding the largest a, b, d and bias of the shapes,
  // filled with a non-zero bf16 pattern (timings on zeros run cooler).
  size_t a_bytes = 0, b_bytes = 0, d_bytes = 0, bias_bytes = 0;
  for (const GemmParams& p : shapes) {
    if (p.m == 0 || p.n == 0 || p.k == 0) continue;
    const Strides ld(p);
    a_bytes = std::max(a_bytes, static_cast<size_t>((p.a_trans ? p.k : p.m) * ld.lda) * 2);
    b_bytes = std::max(b_bytes, static_cast<size_t>((p.b_trans ? p.n : p.k) * ld.ldb) * 2);
    d_bytes = std::max(d_bytes, static_cast<size_t>(p.m * ld.ldd) * (p.d_type == DType::BF16 ? 2 : 4));
    if (p.bias) bias_bytes = std::max(bias_bytes, static_cast<size_t>(p.n) * 2);
  }
  const auto up = [](size_t x) { return (x + 255) / 256 * 256; };
  const size_t total = up(a_bytes) + up(b_bytes) + up(d_bytes) + up(bias_bytes);
  if (total == 0) return true;
  void* scratch = nullptr;
  const cudaError_t allocated = cudaMalloc(&scratch, total);
  if (allocated == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // not a sticky error: clear it, and tune nothing
    return false;
  }
  check(allocated, "gemm tuning scratch");
  auto* base = static_cast<char*>(scratch);
  const auto release = [&] { cudaFree(scratch); };
  try {
    check(cudaMemsetAsync(scratch, 0x3c, up(a_bytes) + up(b_bytes) + up(d_bytes), stream), "gemm tuning");
    check(cudaMemsetAsync(base + total - up(bias_bytes), 0, up(bias_bytes), stream), "gemm tuning");
    for (GemmParams p : shapes) {
      if (p.m == 0 || p.n == 0 || p.k == 0 || impl_->tuned.contains(impl_->tune_key(p))) continue;
      const bool bias = p.bias != nullptr;
      p.a = reinterpret_cast<const bf16*>(base);
      p.b = reinterpret_cast<const bf16*>(base + up(a_bytes));
      p.d = base + up(a_bytes) + up(b_bytes);
      p.bias = bias ? reinterpret_cast<const bf16*>(base + total - up(bias_bytes)) : nullptr;
      const Strides ld(p);
      Plan plan = impl_->describe(p, ld);
      const auto found = impl_->candidates(plan, p, candidates);
      cublasLtMatmulAlgo_t chosen = found[0].algo;
      const float first = impl_->time_algo(plan, found[0].algo, p, stream);
      float best = first;
      for (size_t i = 1; i < found.size(); ++i) {
        const float t = impl_->time_algo(plan, found[i].algo, p, stream);
        if (t < best) best = t, chosen = found[i].algo;
      }
      if (best > 0.99f * first) chosen = found[0].algo;  // within timing noise: keep the heuristic's
      destroy(plan);
      impl_->tuned[impl_->tune_key(p)] = chosen;
    }
  } catch (...) {
    release();
    throw;
  }
  release();
  return true;
}

int64_t Gemm::bucket_of(int64_t x) const { return bucket_end(x, impl_->buckets_per_octave); }

std::vector<int64_t> Gemm::buckets_up_to(int64_t max) const {
  std::vector<int64_t> ends{1};
  while (ends.back() < max) ends.push_back(bucket_of(ends.back() + 1));
  return ends;
}

std::string Gemm::algorithms() const {
  std::string text = fmt::format("duet gemm algorithms 1 buckets/octave {} {}\n", impl_->buckets_per_octave,
                                 tuning_origin());
  for (const auto& [key, algo] : impl_->tuned) {
    const auto& [m, n, k, at, bt, dt, bias] = key;
    text += fmt::format("{} {} {} {:d} {:d} {} {:d}", m, n, k, at, bt, dt, bias);
    for (uint64_t word : algo.data) text += fmt::format(" {:016x}", word);
    text += "\n";
  }
  return text;
}

bool Gemm::use_algorithms(const std::string& text) {
  std::istringstream in(text);
  std::string header;
  std::getline(in, header);
  if (header != fmt::format("duet gemm algorithms 1 buckets/octave {} {}", impl_->buckets_per_octave, tuning_origin()))
    return false;
  std::map<TuneKey, cublasLtMatmulAlgo_t> read;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    std::istringstream fields(line);
    int64_t m = 0, n = 0, k = 0;
    int at = 0, bt = 0, dt = 0, bias = 0;
    cublasLtMatmulAlgo_t algo{};
    fields >> m >> n >> k >> at >> bt >> dt >> bias;
    for (uint64_t& word : algo.data) fields >> std::hex >> word;
    if (!fields || m <= 0 || n <= 0 || k <= 0) fail("gemm algorithms: unreadable line '{}'", line);
    read[{m, n, k, at != 0, bt != 0, dt, bias != 0}] = algo;
  }
  for (const auto& [key, algo] : read) impl_->tuned[key] = algo;
  return true;
}

int64_t Gemm::untuned_runs() const { return impl_->untuned_runs; }

void Gemm::run(const GemmParams& p, cudaStream_t stream) {
  p.validate();
  if (p.m == 0 || p.n == 0) return;
  const Strides ld(p);
  const Impl::Key key{p.m,       p.n,       p.k, ld.lda, ld.ldb, ld.ldd, p.a_trans,
                      p.b_trans, static_cast<int>(p.d_type), p.bias ? alignment_of(p.bias) : 0};
  Plan& plan = impl_->plan_for(key, p, ld);
  if (!plan.tuned) ++impl_->untuned_runs;
  if (p.bias)
    check_lt(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof(p.bias)),
             "bias pointer");
  check_lt(cublasLtMatmul(impl_->handle, plan.desc, &p.alpha, p.b, plan.a, p.a, plan.b, &p.beta, p.d, plan.d, p.d,
                          plan.d, &plan.algo, impl_->workspace, impl_->workspace_bytes, stream),
           "matmul");
}

}  // namespace duet::backend::cuda
