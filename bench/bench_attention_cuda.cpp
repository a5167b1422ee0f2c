// The CUDA forest-masked flash attention on packed rows of 8192 tokens: rows
// built from six preference datasets' length profiles (each example a prompt
// with two responses, packed depth-first as the layout does), plus a plain
// causal row; Llama shapes (32 query / 8 kv heads, head dims 128 and 64).
// TFLOP/s count visible (query, key) pairs only: 4·D FLOP per pair and query
// head forward, 2.5 times that backward. CUDA events, warm-up, median.
//
//   bench_attention_cuda [--repeats N] [--seed S] [--dump DIR] [--only ROW]
// --dump writes each row's visible_until (DIR/<row>.i32, raw int32) and the
// results (DIR/duet.tsv) for bench/attention_peer.py to time PyTorch on the
// same rows. --only times one row (e.g. causal, for a profiler).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/attention.hpp"
#include "backend/cuda/attention_backward_sm90.hpp"
#include "backend/cuda/attention_forward_sm90.hpp"

namespace cu = duet::backend::cuda;

namespace {

constexpr int kRow = 8192;

void ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

struct Profile {
  const char* name;
  double median;  // tokens per example (prompt + one completion)
  double ratio;   // prompt : completion
};
// Median lengths and prompt-to-completion ratios of the datasets.
const Profile kProfiles[] = {{"capybara", 1160, 1.59},      {"hh-rlhf", 186, 2.15},
                             {"metamath-dpo", 872, 3.91},   {"tldr", 416, 11.14},
                             {"tulu-helpsteer", 775, 6.34}, {"ultrafeedback", 409, 0.42}};

struct Row {
  std::string name;
  std::vector<int32_t> visible_until, positions;
};

// Examples drawn around the profile's median (log-normal, sigma 0.5), split by
// its ratio, two responses of +-30% the completion length; packed greedily,
// then padding tokens that see only themselves.
Row packed_row(const Profile& p, std::mt19937_64& rng) {
  Row r{p.name, {}, {}};
  std::lognormal_distribution<double> length(std::log(p.median), 0.5);
  std::uniform_real_distribution<double> jitter(0.7, 1.3);
  for (int misses = 0; misses < 20;) {
    const double total = std::min(length(rng), 0.9 * kRow);
    const int prompt = std::max(1, static_cast<int>(std::lround(total * p.ratio / (1 + p.ratio))));
    const double completion = std::max(1.0, total - prompt);
    const int a = std::max(1, static_cast<int>(completion * jitter(rng)));
    const int b = std::max(1, static_cast<int>(completion * jitter(rng)));
    const int begin = static_cast<int>(r.visible_until.size());
    if (begin + prompt + a + b > kRow) {
      ++misses;
      continue;
    }
    const int end = begin + prompt + a + b;
    for (int i = 0; i < prompt; ++i) r.visible_until.push_back(end), r.positions.push_back(i);
    for (int i = 0; i < a; ++i) r.visible_until.push_back(begin + prompt + a), r.positions.push_back(prompt + i);
    for (int i = 0; i < b; ++i) r.visible_until.push_back(end), r.positions.push_back(prompt + i);
  }
  while (r.visible_until.size() < kRow) {
    r.visible_until.push_back(static_cast<int32_t>(r.visible_until.size() + 1));
    r.positions.push_back(0);
  }
  return r;
}

Row causal_row() {
  Row r{"causal", std::vector<int32_t>(kRow, kRow), std::vector<int32_t>(kRow)};
  for (int i = 0; i < kRow; ++i) r.positions[i] = i;
  return r;
}

double visible_pairs(const Row& r) {
  double pairs = 0;
  for (int j = 0; j < kRow; ++j) pairs += r.visible_until[j] - j;
  return pairs;
}

template <typename F>
double median_ms(F&& run, int repeats) {
  cudaEvent_t a, b;
  ok(cudaEventCreate(&a), "event");
  ok(cudaEventCreate(&b), "event");
  for (int i = 0; i < 3; ++i) run();
  std::vector<float> ms;
  for (int i = 0; i < repeats; ++i) {
    ok(cudaEventRecord(a), "record");
    run();
    ok(cudaEventRecord(b), "record");
    ok(cudaEventSynchronize(b), "sync");
    float t = 0;
    ok(cudaEventElapsedTime(&t, a, b), "elapsed");
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int repeats = 10;
  uint64_t seed = 20261202;
  std::string dump, only;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--repeats") repeats = std::atoi(argv[i + 1]);
    else if (flag == "--seed") seed = std::strtoull(argv[i + 1], nullptr, 10);
    else if (flag == "--dump") dump = argv[i + 1];
    else if (flag == "--only") only = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: %s [--repeats N] [--seed S] [--dump DIR] [--only ROW]\n", argv[0]);
      return 2;
    }
  }
  std::mt19937_64 rng(seed);
  std::vector<Row> rows;
  for (const Profile& p : kProfiles) rows.push_back(packed_row(p, rng));
  rows.push_back(causal_row());

  const int hq = 32, hkv = 8;
  const int64_t fused = int64_t{hq + 2 * hkv} * 128;  // the largest head dim
  cu::bf16 *qkv, *o, *d_o, *dqkv;
  float* lse;
  int32_t *vu, *pos;
  ok(cudaMalloc(&qkv, kRow * fused * 2), "malloc");
  ok(cudaMalloc(&dqkv, kRow * fused * 2), "malloc");
  ok(cudaMalloc(&o, kRow * int64_t{hq} * 128 * 2), "malloc");
  ok(cudaMalloc(&d_o, kRow * int64_t{hq} * 128 * 2), "malloc");
  ok(cudaMalloc(&lse, kRow * int64_t{hq} * 4), "malloc");
  ok(cudaMalloc(&vu, kRow * 4), "malloc");
  ok(cudaMalloc(&pos, kRow * 4), "malloc");
  {  // random inputs: q, k of a few units, v and dO in [-1, 1)
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    std::vector<cu::bf16> h(kRow * fused);
    for (auto& x : h) x = __float2bfloat16(dist(rng));
    ok(cudaMemcpy(qkv, h.data(), h.size() * 2, cudaMemcpyHostToDevice), "copy");
    ok(cudaMemcpy(d_o, h.data(), kRow * int64_t{hq} * 128 * 2, cudaMemcpyHostToDevice), "copy");
  }

  std::FILE* tsv = dump.empty() ? nullptr : std::fopen((dump + "/duet.tsv").c_str(), "w");
  if (tsv) std::fprintf(tsv, "row\thead_dim\tq_heads\tkv_heads\tpairs\tfwd_ms\tbwd_ms\n");
  // Which kernels run per head dim (DUET_ATTENTION_SM90=1/0 and DUET_ATTENTION_BWD_SM90=1/0
  // override; docs/attention-cuda.md).
  const char* env = std::getenv("DUET_ATTENTION_SM90");
  const char* bwd_env = std::getenv("DUET_ATTENTION_BWD_SM90");
  std::printf("forward kernel: hd64 %s, hd128 %s (DUET_ATTENTION_SM90=%s)\n",
              cu::attention_forward_uses_sm90(64) ? "sm90" : "mma.sync",
              cu::attention_forward_uses_sm90(128) ? "sm90" : "mma.sync", env ? env : "unset");
  std::printf("backward kernels: hd64 %s, hd128 %s (DUET_ATTENTION_BWD_SM90=%s)\n",
              cu::attention_backward_uses_sm90(64) ? "sm90" : "mma.sync",
              cu::attention_backward_uses_sm90(128) ? "sm90" : "mma.sync", bwd_env ? bwd_env : "unset");
  std::printf("%-15s %4s %8s %9s %9s %9s %9s %8s\n", "row", "D", "density", "fwd ms", "fwd TF/s",
              "bwd ms", "bwd TF/s", "plan us");
  for (const Row& r : rows) {
    if (!only.empty() && r.name != only) continue;
    if (!dump.empty()) {
      std::ofstream f(dump + "/" + r.name + ".i32", std::ios::binary);
      f.write(reinterpret_cast<const char*>(r.visible_until.data()), kRow * 4);
    }
    ok(cudaMemcpy(vu, r.visible_until.data(), kRow * 4, cudaMemcpyHostToDevice), "copy");
    ok(cudaMemcpy(pos, r.positions.data(), kRow * 4, cudaMemcpyHostToDevice), "copy");
    const double pairs = visible_pairs(r);
    for (int dim : {128, 64}) {
      duet::backend::AttentionShape s;
      s.n_tokens = kRow;
      s.n_q_heads = hq;
      s.n_kv_heads = hkv;
      s.head_dim = dim;
      s.visible_until = vu;
      s.positions = pos;
      void* ws;
      ok(cudaMalloc(&ws, cu::attention_workspace_bytes(s)), "malloc");
      const int64_t qrow = int64_t{hq} * dim, kvrow = int64_t{hkv} * dim, stride = qrow + 2 * kvrow;
      cu::AttentionForward f;
      static_cast<duet::backend::AttentionShape&>(f) = s;
      f.q = qkv, f.k = qkv + qrow, f.v = qkv + qrow + kvrow, f.o = o, f.lse = lse;
      f.q_row_stride = f.k_row_stride = f.v_row_stride = stride;
      f.o_row_stride = qrow;
      f.workspace = ws;
      cu::AttentionBackward b;
      static_cast<duet::backend::AttentionShape&>(b) = s;
      b.q = f.q, b.k = f.k, b.v = f.v, b.o = o, b.d_o = d_o, b.lse = lse;
      b.dq = dqkv, b.dk = dqkv + qrow, b.dv = dqkv + qrow + kvrow;
      b.q_row_stride = b.k_row_stride = b.v_row_stride = stride;
      b.dq_row_stride = b.dk_row_stride = b.dv_row_stride = stride;
      b.o_row_stride = b.do_row_stride = qrow;
      b.workspace = ws;
      const double plan = median_ms([&] { cu::attention_plan(s, ws, nullptr); }, repeats);
      const double fwd = median_ms([&] { cu::attention_forward(f, nullptr); }, repeats);
      const double bwd = median_ms([&] { cu::attention_backward(b, nullptr); }, repeats);
      ok(cudaGetLastError(), "kernels");
      const double flop = 4.0 * dim * hq * pairs;
      std::printf("%-15s %4d %8.3f %9.3f %9.1f %9.3f %9.1f %8.1f\n", r.name.c_str(), dim,
                  pairs / (0.5 * kRow * (kRow + 1.0)), fwd, flop / fwd / 1e9, bwd,
                  2.5 * flop / bwd / 1e9, plan * 1e3);
      if (tsv)
        std::fprintf(tsv, "%s\t%d\t%d\t%d\t%.0f\t%.4f\t%.4f\n", r.name.c_str(), dim, hq, hkv, pairs,
                     fwd, bwd);
      cudaFree(ws);
    }
  }
  if (tsv) std::fclose(tsv);
  return 0;
}
