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
#include <vector>
#include <tuple>

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

// One cached plan per distinct product: descriptors, layouts and the chosen algorithm.
struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

struct Gemm::Impl {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  // m, n, k, lda, ldb, ldd, a_trans, b_trans, d_type, bias alignment (0 = no bias)
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, int, int32_t>;
  std::map<Key, Plan> plans;

  ~Impl() {
    for (auto& [key, plan] : plans) {
      cublasLtMatrixLayoutDestroy(plan.a);
      cublasLtMatrixLayoutDestroy(plan.b);
      cublasLtMatrixLayoutDestroy(plan.d);
      cublasLtMatmulDescDestroy(plan.desc);
    }
    if (workspace) cudaFree(workspace);
    if (handle) cublasLtDestroy(handle);
  }

  int candidates = 1;  // > 1: time that many of the heuristic's algorithms on first use, keep the fastest
  // Autotuned algorithms by product kind and token-count bucket: the engine's
  // token dimension (m of the forward and input-gradient products, k of the
  // weight gradients) changes with every row, so a shape is tuned once per
  // power-of-two bucket of m and k and its choice reused, when cuBLASLt
  // accepts it, by the other shapes of that bucket (no timing in steady state).
  using TuneKey = std::tuple<int64_t, int64_t, int64_t, bool, bool, int, bool>;
  std::map<TuneKey, cublasLtMatmulAlgo_t> tuned;

  static int64_t bucket(int64_t x) { return int64_t{1} << std::bit_width(static_cast<uint64_t>(x - 1)); }

  // Times `algo` on the product's own operands, writing a scratch D (beta 0,
  // so an accumulating product's output is not touched): median of 5 runs.
  float time_algo(const Plan& plan, const cublasLtMatmulAlgo_t& algo, const GemmParams& p, void* scratch,
                  cudaStream_t stream) {
    const float zero = 0.0f;
    cudaEvent_t start, stop;
    check(cudaEventCreate(&start), "gemm autotune");
    check(cudaEventCreate(&stop), "gemm autotune");
    std::vector<float> ms;
    for (int r = 0; r < 6; ++r) {
      check(cudaEventRecord(start, stream), "gemm autotune");
      const cublasStatus_t st = cublasLtMatmul(handle, plan.desc, &p.alpha, p.b, plan.a, p.a, plan.b, &zero, scratch,
                                               plan.d, scratch, plan.d, &algo, workspace, workspace_bytes, stream);
      check(cudaEventRecord(stop, stream), "gemm autotune");
      check(cudaEventSynchronize(stop), "gemm autotune");
      float t = 0;
      check(cudaEventElapsedTime(&t, start, stop), "gemm autotune");
      if (st != CUBLAS_STATUS_SUCCESS) t = 1e30f;
      if (r > 0) ms.push_back(t);  // the first run warms up
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  }

  Plan& plan_for(const Key& key, const GemmParams& p, int64_t lda, int64_t ldb, int64_t ldd, cudaStream_t stream) {
    auto it = plans.find(key);
    if (it != plans.end()) return it->second;
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
    check_lt(cublasLtMatrixLayoutCreate(&plan.a, CUDA_R_16BF, first_rows, first_cols, ldb), "layout of b");
    check_lt(cublasLtMatrixLayoutCreate(&plan.b, CUDA_R_16BF, second_rows, second_cols, lda), "layout of a");
    check_lt(cublasLtMatrixLayoutCreate(&plan.d, d_type, p.n, p.m, ldd), "layout of d");

    cublasLtMatmulPreference_t pref = nullptr;
    check_lt(cublasLtMatmulPreferenceCreate(&pref), "preference");
    const uint32_t align = 16;  // validate() guarantees 16-byte bases, so any such pointer may come later
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                         sizeof(workspace_bytes));
    for (auto attr : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
      cublasLtMatmulPreferenceSetAttribute(pref, attr, &align, sizeof(align));
    std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<size_t>(std::max(1, candidates)));
    int found = 0;
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle, plan.desc, plan.a, plan.b, plan.d, plan.d, pref,
                                                             static_cast<int>(results.size()), results.data(), &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
      cublasLtMatrixLayoutDestroy(plan.a);
      cublasLtMatrixLayoutDestroy(plan.b);
      cublasLtMatrixLayoutDestroy(plan.d);
      cublasLtMatmulDescDestroy(plan.desc);
      fail("gemm: cuBLASLt has no algorithm for m={} n={} k={} a_trans={} b_trans={} d={}{} (status {})", p.m, p.n,
           p.k, p.a_trans, p.b_trans, p.d_type == DType::BF16 ? "bf16" : "fp32", p.bias ? " with bias" : "",
           static_cast<int>(st));
    }
    plan.algo = results[0].algo;
    const TuneKey tune_key{bucket(p.m), p.n, bucket(p.k), p.a_trans, p.b_trans, static_cast<int>(p.d_type),
                           p.bias != nullptr};
    if (const auto t = tuned.find(tune_key); found > 1 && t != tuned.end()) {
      cublasLtMatmulHeuristicResult_t check_result{};
      if (cublasLtMatmulAlgoCheck(handle, plan.desc, plan.a, plan.b, plan.d, plan.d, &t->second, &check_result) ==
              CUBLAS_STATUS_SUCCESS &&
          check_result.workspaceSize <= workspace_bytes) {
        plan.algo = t->second;
        return plans.emplace(key, plan).first->second;
      }
    }
    if (found > 1) {  // autotune: the fastest of the candidates on this shape
      const size_t bytes = static_cast<size_t>(p.m) * static_cast<size_t>(ldd) * (p.d_type == DType::BF16 ? 2 : 4);
      void* scratch = nullptr;
      check(cudaMalloc(&scratch, bytes), "gemm autotune scratch");
      float best = time_algo(plan, results[0].algo, p, scratch, stream);
      for (int i = 1; i < found; ++i) {
        const float t = time_algo(plan, results[static_cast<size_t>(i)].algo, p, scratch, stream);
        if (t < best) best = t, plan.algo = results[static_cast<size_t>(i)].algo;
      }
      cudaFree(scratch);
      tuned[tune_key] = plan.algo;
    }
    return plans.emplace(key, plan).first->second;
  }
};

Gemm::Gemm(size_t workspace_bytes) : impl_(std::make_unique<Impl>()) {
  check_lt(cublasLtCreate(&impl_->handle), "create handle");
  impl_->workspace_bytes = workspace_bytes;
  // Opt-in autotuning for the engine (docs/cuda-engine.md): the chosen
  // algorithms depend on timings, so runs are no longer bitwise repeatable.
  if (const char* v = std::getenv("DUET_GEMM_AUTOTUNE"); v && *v) impl_->candidates = std::clamp(std::atoi(v), 1, 64);
  if (workspace_bytes) check(cudaMalloc(&impl_->workspace, workspace_bytes), "gemm workspace");
}

Gemm::~Gemm() = default;

void Gemm::set_autotune(int candidates) { impl_->candidates = std::max(1, candidates); }

void Gemm::run(const GemmParams& p, cudaStream_t stream) {
  p.validate();
  if (p.m == 0 || p.n == 0) return;
  const int64_t lda = packed_or(p.lda, p.a_trans ? p.m : p.k);
  const int64_t ldb = packed_or(p.ldb, p.b_trans ? p.k : p.n);
  const int64_t ldd = packed_or(p.ldd, p.n);
  const Impl::Key key{p.m,         p.n,         p.k, lda, ldb, ldd, p.a_trans, p.b_trans, static_cast<int>(p.d_type),
                      p.bias ? alignment_of(p.bias) : 0};
  Plan& plan = impl_->plan_for(key, p, lda, ldb, ldd, stream);
  if (p.bias)
    check_lt(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof(p.bias)),
             "bias pointer");
  check_lt(cublasLtMatmul(impl_->handle, plan.desc, &p.alpha, p.b, plan.a, p.a, plan.b, &p.beta, p.d, plan.d, p.d,
                          plan.d, &plan.algo, impl_->workspace, impl_->workspace_bytes, stream),
           "matmul");
}

}  // namespace duet::backend::cuda
