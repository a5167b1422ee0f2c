// CPU reference kernels: attention forward/backward under causal and packed
// forest masks, and the chunked target log-probs. These figures are only
// indicative (the CUDA backend is what trains); they show what tile skipping
// saves and keep the reference fast enough for tests on real sizes.
//   build-*/bench/bench_ops --benchmark_min_time=1s
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/attention.hpp"
#include "backend/target_logprobs.hpp"

namespace {

using namespace duet::backend;

constexpr int64_t kTokens = 2048, kHeads = 8, kDim = 64;

// mask 0: one causal sequence; 1: packed prompt + 2 responses trees (prompt
// 100-400 tokens, responses 50-300), depth-first, padding at the end.
struct Mask {
  std::vector<int32_t> visible_until, position;
};

Mask make_mask(int kind) {
  Mask m;
  if (kind == 0) {
    m.visible_until.assign(kTokens, static_cast<int32_t>(kTokens));
    for (int64_t i = 0; i < kTokens; ++i) m.position.push_back(static_cast<int32_t>(i));
    return m;
  }
  std::mt19937_64 rng(7);
  auto len = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (;;) {
    const int p = len(100, 400), a = len(50, 300), b = len(50, 300);
    const int32_t start = static_cast<int32_t>(m.visible_until.size());
    if (start + p + a + b > kTokens) break;
    for (int i = 0; i < p; ++i) m.visible_until.push_back(start + p + a + b), m.position.push_back(i);
    for (int i = 0; i < a; ++i) m.visible_until.push_back(start + p + a), m.position.push_back(p + i);
    for (int i = 0; i < b; ++i) m.visible_until.push_back(start + p + a + b), m.position.push_back(p + i);
  }
  while (static_cast<int64_t>(m.visible_until.size()) < kTokens) {
    m.visible_until.push_back(static_cast<int32_t>(m.visible_until.size() + 1));
    m.position.push_back(0);
  }
  return m;
}

// Visible (query, key) pairs per head: the work a perfect skipper does.
double visible_pairs(const Mask& m) {
  double n = 0;
  for (int64_t j = 0; j < kTokens; ++j) n += m.visible_until[j] - j;
  return n;
}

std::vector<float> random_floats(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Args: mask kind, classify tiles (0/1), kv heads.
void BM_Attention(benchmark::State& state, bool backward) {
  const Mask mask = make_mask(static_cast<int>(state.range(0)));
  const int64_t hkv = state.range(2);
  const auto q = random_floats(kTokens * kHeads * kDim, 1), k = random_floats(kTokens * hkv * kDim, 2),
             v = random_floats(kTokens * hkv * kDim, 3), d_o = random_floats(kTokens * kHeads * kDim, 4);
  std::vector<float> o(q.size()), lse(kTokens * kHeads), dq(q.size()), dk(k.size()), dv(v.size());
  AttentionParams<float> f;
  f.n_tokens = kTokens;
  f.n_q_heads = kHeads;
  f.n_kv_heads = hkv;
  f.head_dim = kDim;
  f.visible_until = mask.visible_until.data();
  f.classify_tiles = state.range(1) != 0;
  f.set_packed_strides();
  f.q = q.data();
  f.k = k.data();
  f.v = v.data();
  f.o = o.data();
  f.lse = lse.data();
  AttentionBackwardParams<float> b;
  static_cast<AttentionShape&>(b) = f;
  b.set_packed_strides();
  b.q = q.data();
  b.k = k.data();
  b.v = v.data();
  b.o = o.data();
  b.lse = lse.data();
  b.d_o = d_o.data();
  b.dq = dq.data();
  b.dk = dk.data();
  b.dv = dv.data();
  duet::backend::cpu::attention_forward(f);
  for (auto _ : state) {
    if (backward) duet::backend::cpu::attention_backward(b);
    else duet::backend::cpu::attention_forward(f);
    benchmark::DoNotOptimize(backward ? dq.data() : o.data());
  }
  // Useful FLOPs: 4 D per visible pair and head forward (QK^T, PV), 2.5x that
  // backward (the CPU kernel recomputes scores in both backward passes).
  const double flops = visible_pairs(mask) * kHeads * 4 * kDim * (backward ? 2.5 : 1.0);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["visible"] = visible_pairs(mask) / (double(kTokens) * kTokens);
  state.SetItemsProcessed(state.iterations() * kTokens);
}

void attention_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"forest", "classify", "hkv"});
  b->Args({0, 1, 8})->Args({1, 1, 8})->Args({1, 0, 8})->Args({1, 1, 2});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK_CAPTURE(BM_Attention, forward, false)->Apply(attention_args);
BENCHMARK_CAPTURE(BM_Attention, backward, true)->Apply(attention_args);

// 1024 targets out of 2048 rows, hidden 512, Llama-2 vocabulary, 4096-row chunks.
void BM_TargetLogprobs(benchmark::State& state, bool backward) {
  const int64_t rows = 2048, targets = 1024, dim = 512, vocab = 32000;
  const auto hidden = random_floats(rows * dim, 5), head = random_floats(vocab * dim, 6);
  std::vector<int32_t> target_rows(targets);
  std::vector<uint32_t> target_ids(targets);
  for (int64_t t = 0; t < targets; ++t) {
    target_rows[t] = static_cast<int32_t>(2 * t);
    target_ids[t] = static_cast<uint32_t>((t * 7919) % vocab);
  }
  std::vector<float> logp(targets), lse(targets), d_logp(targets, -1.0f), dh(rows * dim), dw(vocab * dim);
  TargetLogprobsParams<float> f;
  f.hidden = hidden.data();
  f.lm_head = head.data();
  f.target_rows = target_rows.data();
  f.target_ids = target_ids.data();
  f.logp = logp.data();
  f.lse = lse.data();
  f.n_rows = rows;
  f.hidden_dim = dim;
  f.vocab = vocab;
  f.n_targets = targets;
  f.vocab_chunk = state.range(0);
  duet::backend::cpu::target_logprobs_forward(f);
  TargetLogprobsBackwardParams<float> b;
  b.hidden = hidden.data();
  b.lm_head = head.data();
  b.target_rows = target_rows.data();
  b.target_ids = target_ids.data();
  b.lse = lse.data();
  b.d_logp = d_logp.data();
  b.d_hidden = dh.data();
  b.d_lm_head = dw.data();
  b.n_rows = rows;
  b.hidden_dim = dim;
  b.vocab = vocab;
  b.n_targets = targets;
  b.vocab_chunk = state.range(0);
  for (auto _ : state) {
    if (backward) duet::backend::cpu::target_logprobs_backward(b);
    else duet::backend::cpu::target_logprobs_forward(f);
    benchmark::DoNotOptimize(logp.data());
  }
  const double flops = 2.0 * targets * vocab * dim * (backward ? 3 : 1);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetItemsProcessed(state.iterations() * targets);
}

BENCHMARK_CAPTURE(BM_TargetLogprobs, forward, false)
    ->ArgName("chunk")->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TargetLogprobs, backward, true)
    ->ArgName("chunk")->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
