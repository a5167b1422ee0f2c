// The engine's matrix products through duet's Gemm against the fastest of
// cuBLASLt's top 16 candidates timed on the same shape: "within 5% of
// cuBLAS's best". Four plans per product and token count T:
//   heuristic  cuBLASLt's first algorithm (DUET_GEMM_AUTOTUNE=0);
//   octave     tuned (16 candidates) at the end of T's power-of-two bucket
//              (8192 for T = 5120 .. 8192) and used at T;
//   half       tuned at the end of T's half-octave bucket
//              (6144 for 4097 .. 6144, 8192 for 6145 .. 8192);
//   refined    the engine's: half, then refined at T (the bucket's 3 fastest
//              and the heuristic's first at T timed again: Gemm::refine);
//   best       tuned on exactly this shape (16 candidates).
// Shapes of Llama-3.2-1B and Llama-3.1-8B at T = 5120, 6144 and 7168 tokens:
// the forward products (q/k/v fused, o, gate/up fused, down), the input
// gradients, the weight gradients (fp32, accumulated), and an LM-head chunk
// (T/2 targets x 8192 vocabulary rows, fp32 logits). CUDA events, random bf16
// operands; the plans' runs alternate (so clock and temperature drift fall on
// all alike), each timed as a burst of 5 back-to-back products, median of N
// bursts after 3 warm-up bursts.
//   bench_gemm_cuda [--repeats N]   (default 12)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/gemm.hpp"

namespace cu = duet::backend::cuda;

namespace {

void ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

struct Shape {
  std::string name;
  int64_t m, n, k;
  bool a_trans, b_trans;
  cu::DType d_type;
  float beta;
  bool tokens_in_k;  // the weight gradients sum over tokens
};

// Row-major products as the engine issues them for one layer, T tokens.
std::vector<Shape> model_shapes(const char* model, int64_t d, int64_t q, int64_t kv, int64_t f, int64_t T) {
  const int64_t qkv = q + 2 * kv;
  auto fw = [&](const char* w, int64_t in, int64_t out) {
    return Shape{std::string(model) + " fwd " + w, T, out, in, false, true, cu::DType::BF16, 0.0f, false};
  };
  auto dx = [&](const char* w, int64_t in, int64_t out, cu::DType t) {
    return Shape{std::string(model) + " dx " + w, T, in, out, false, false, t, 0.0f, false};
  };
  auto dw = [&](const char* w, int64_t in, int64_t out) {
    return Shape{std::string(model) + " dW " + w, out, in, T, true, false, cu::DType::F32, 1.0f, true};
  };
  return {fw("qkv", d, qkv),  fw("o", q, d),        fw("gate_up", d, 2 * f), fw("down", f, d),
          dx("qkv", d, qkv, cu::DType::F32), dx("o", q, d, cu::DType::BF16), dx("gate_up", d, 2 * f, cu::DType::F32),
          dx("down", f, d, cu::DType::BF16), dw("qkv", d, qkv), dw("o", q, d), dw("gate_up", d, 2 * f),
          dw("down", f, d),
          Shape{std::string(model) + " lm_head chunk", T / 2, 8192, d, false, true, cu::DType::F32, 0.0f, false}};
}

// Median milliseconds per product of each plan, the plans' bursts alternating.
std::vector<float> time_plans(const std::vector<cu::Gemm*>& plans, const cu::GemmParams& p, int repeats) {
  constexpr int kBurst = 5;
  cudaEvent_t a, b;
  ok(cudaEventCreate(&a), "event");
  ok(cudaEventCreate(&b), "event");
  auto burst = [&](cu::Gemm& g) {
    ok(cudaEventRecord(a), "event");
    for (int i = 0; i < kBurst; ++i) g.run(p, nullptr);
    ok(cudaEventRecord(b), "event");
    ok(cudaEventSynchronize(b), "event");
    float t = 0;
    ok(cudaEventElapsedTime(&t, a, b), "event");
    return t / kBurst;
  };
  for (int i = 0; i < 3; ++i)
    for (cu::Gemm* g : plans) burst(*g);
  std::vector<std::vector<float>> ms(plans.size());
  for (int i = 0; i < repeats; ++i)
    for (size_t j = 0; j < plans.size(); ++j) ms[j].push_back(burst(*plans[j]));
  cudaEventDestroy(a), cudaEventDestroy(b);
  std::vector<float> median;
  for (auto& m : ms) {
    std::sort(m.begin(), m.end());
    median.push_back(m[m.size() / 2]);
  }
  return median;
}

}  // namespace

int main(int argc, char** argv) {
  int repeats = 12;
  for (int i = 1; i + 1 < argc; ++i)
    if (!std::strcmp(argv[i], "--repeats")) repeats = std::atoi(argv[i + 1]);
  std::vector<Shape> shapes;
  for (int64_t T : {5120, 6144, 7168}) {
    for (auto& s : model_shapes("1B", 2048, 2048, 512, 8192, T)) shapes.push_back(s);
    for (auto& s : model_shapes("8B", 4096, 4096, 1024, 14336, T)) shapes.push_back(s);
  }
  size_t largest = 0;
  for (const auto& s : shapes) largest = std::max({largest, size_t(s.m * s.k), size_t(s.k * s.n), size_t(s.m * s.n)});
  std::vector<uint16_t> host(largest);
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> mant(0, 127);
  for (auto& h : host) h = static_cast<uint16_t>(0x3c00 | (mant(rng) << 0) | ((rng() & 1) << 15));  // +-[0.0078, 0.0156)
  void *a, *b, *d;
  ok(cudaMalloc(&a, largest * 2), "malloc"), ok(cudaMalloc(&b, largest * 2), "malloc"), ok(cudaMalloc(&d, largest * 4), "malloc");
  ok(cudaMemcpy(a, host.data(), largest * 2, cudaMemcpyHostToDevice), "copy");
  ok(cudaMemcpy(b, host.data(), largest * 2, cudaMemcpyHostToDevice), "copy");
  ok(cudaMemset(d, 0, largest * 4), "memset");
  cu::Gemm heuristic, octave(cu::kGemmWorkspaceBytes, 1), half(cu::kGemmWorkspaceBytes, 2), refined;
  std::printf("%-22s %6s %6s %6s %9s %7s %7s %7s %7s\n", "product", "m", "n", "k", "best TF/s", "heur", "octave", "half",
              "refined");
  constexpr int kPlans = 4;  // compared with the best
  double worst[kPlans] = {1e9, 1e9, 1e9, 1e9}, sum[kPlans] = {0, 0, 0, 0};
  int below[kPlans] = {0, 0, 0, 0};
  for (const auto& s : shapes) {
    cu::GemmParams p;
    p.a = static_cast<cu::bf16*>(a), p.b = static_cast<cu::bf16*>(b), p.d = d, p.d_type = s.d_type;
    p.a_trans = s.a_trans, p.b_trans = s.b_trans, p.m = s.m, p.n = s.n, p.k = s.k, p.beta = s.beta;
    for (cu::Gemm* g : {&octave, &half, &refined}) {  // tuned at the end of the token count's bucket
      cu::GemmParams end = p;
      int64_t& tokens = s.tokens_in_k ? end.k : end.m;
      tokens = g->bucket_of(tokens);
      g->tune({end}, 16, nullptr);
    }
    refined.refine({p}, 3, nullptr);
    cu::Gemm best;
    best.tune({p}, 16, nullptr);
    const double flop = 2.0 * s.m * s.n * s.k;
    const auto t = time_plans({&heuristic, &octave, &half, &refined, &best}, p, repeats);
    double r[kPlans];
    for (int j = 0; j < kPlans; ++j) {
      r[j] = t[kPlans] / t[static_cast<size_t>(j)];  // 1 = as fast as the best candidate
      worst[j] = std::min(worst[j], r[j]), sum[j] += r[j], below[j] += r[j] < 0.95;
    }
    std::printf("%-22s %6lld %6lld %6lld %9.1f %7.3f %7.3f %7.3f %7.3f\n", s.name.c_str(), (long long)s.m,
                (long long)s.n, (long long)s.k, flop / t[kPlans] / 1e9, r[0], r[1], r[2], r[3]);
  }
  const double n = static_cast<double>(shapes.size());
  std::printf("ratio to the best (best time / plan's time) over %zu products: worst, mean, how many below 0.95\n",
              shapes.size());
  const char* names[kPlans] = {"heuristic", "octave-tuned", "half-octave-tuned", "refined (the engine's)"};
  for (int j = 0; j < kPlans; ++j)
    std::printf("  %-24s %.3f %.3f %d\n", names[j], worst[j], sum[j] / n, below[j]);
  return 0;
}
