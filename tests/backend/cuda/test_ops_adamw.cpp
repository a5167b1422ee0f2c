// The global gradient norm and the fused AdamW pass (backend/cuda/adamw.hpp)
// against backend::cpu in double: three steps over slots with decay on and
// off, clipping active, inactive and off, vector and scalar paths.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/adamw.hpp"
#include "backend/cuda/adamw.hpp"
#include "backend/cuda/ops_helpers.hpp"

namespace duet::test::ops {
namespace {

namespace bc = backend::cuda;

// Slots of random sizes (some odd, some tiny) covering n parameters.
std::vector<int64_t> random_slots(std::mt19937_64& rng, int64_t n) {
  std::vector<int64_t> offsets{0};
  while (offsets.back() < n) offsets.push_back(std::min(n, offsets.back() + random_int(rng, 1, 60000)));
  return offsets;
}

double long_double_norm(const std::vector<float>& g) {
  long double s = 0;
  for (float x : g) s += static_cast<long double>(x) * x;
  return static_cast<double>(std::sqrt(s));
}

TEST(CudaAdamW, GlobalNormDeterministic) {
  DUET_OPS_REQUIRE_GPU();
  DUET_SEEDED_RNG(rng);
  for (int64_t n : {int64_t{1} << 20, int64_t{1000003}, int64_t{5}}) {
    for (int64_t offset : {0, 1}) {  // offset 1: not 16-byte aligned, the scalar path
      const std::vector<float> g = to_f32(random_values(rng, n, -3, 3));
      DeviceArray<float> grads(n + offset);
      cuda_ok(cudaMemcpy(grads.get() + offset, g.data(), sizeof(float) * n, cudaMemcpyHostToDevice), "upload");
      DeviceArray<double> partials(bc::grad_norm_partials(n)), norm(1);
      bc::global_grad_norm(grads.get() + offset, n, partials.get(), norm.get(), nullptr);
      const double first = norm.download()[0];
      bc::global_grad_norm(grads.get() + offset, n, partials.get(), norm.get(), nullptr);
      EXPECT_EQ(std::memcmp(&first, norm.download().data(), sizeof(double)), 0) << "norm not reproducible";
      // Sum of n positive doubles in a tree of depth <= 256 + 8 + 64 + 10: relative error <= 400 · 2^-53.
      const double expected = long_double_norm(g), rel = std::abs(first - expected) / expected;
      std::printf("[ops] %-44s rel err %.3e (bound 1e-12)\n",
                  ("global_grad_norm n " + std::to_string(n) + (offset ? " unaligned" : "")).c_str(), rel);
      EXPECT_LE(rel, 1e-12);
    }
  }
}

struct Run {
  std::vector<float> master, m, v;
  std::vector<bf16> weights;
};

// Three steps on the GPU and the same three with cpu::adamw_step<double>
// (per slot, grad_scale = clip_coefficient of the double norm).
void check_steps(std::mt19937_64& rng, int64_t n, double max_norm, double grad_range, int64_t offset,
                 const std::string& name) {
  SCOPED_TRACE(name);
  const std::vector<int64_t> offsets = random_slots(rng, n);
  const int64_t n_slots = static_cast<int64_t>(offsets.size()) - 1;
  std::vector<uint8_t> decay(n_slots);
  for (int64_t s = 0; s < n_slots; ++s) decay[s] = s % 2;
  const std::vector<double> w0 = widen(to_f32(random_values(rng, n, -1, 1)));
  std::vector<double> w = w0, m(n, 0.0), v(n, 0.0);

  // Device buffers offset by `offset` floats (1: the scalar path).
  DeviceArray<float> master(n + offset), grads(n + offset), gm(n + offset), gv(n + offset);
  DeviceArray<bf16> weights(n + 8);
  DeviceArray<int64_t> d_offsets(offsets);
  DeviceArray<uint8_t> d_decay(decay);
  DeviceArray<double> partials(bc::grad_norm_partials(n)), norm(1);
  const std::vector<float> zeros(n, 0.0f), w0f = to_f32(w0);
  cuda_ok(cudaMemcpy(master.get() + offset, w0f.data(), sizeof(float) * n, cudaMemcpyHostToDevice), "upload");
  cuda_ok(cudaMemcpy(gm.get() + offset, zeros.data(), sizeof(float) * n, cudaMemcpyHostToDevice), "upload");
  cuda_ok(cudaMemcpy(gv.get() + offset, zeros.data(), sizeof(float) * n, cudaMemcpyHostToDevice), "upload");

  const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
  for (int step = 1; step <= 3; ++step) {
    const std::vector<float> g = to_f32(random_values(rng, n, -grad_range, grad_range));
    cuda_ok(cudaMemcpy(grads.get() + offset, g.data(), sizeof(float) * n, cudaMemcpyHostToDevice), "upload");
    bc::global_grad_norm(grads.get() + offset, n, partials.get(), norm.get(), nullptr);
    bc::AdamWStep p;
    p.master = master.get() + offset, p.weights = weights.get(), p.grads = grads.get() + offset;
    p.m = gm.get() + offset, p.v = gv.get() + offset, p.n = n;
    p.slot_offsets = d_offsets.get(), p.slot_decay = d_decay.get(), p.n_slots = n_slots;
    p.grad_norm = max_norm > 0 ? norm.get() : nullptr, p.max_norm = max_norm;
    p.lr = lr, p.beta1 = b1, p.beta2 = b2, p.eps = eps, p.weight_decay = wd, p.step = step;
    bc::adamw_step(p, nullptr);

    const std::vector<double> gd = widen(g);
    const backend::GradView<double> view{gd.data(), n};
    const double scale =
        max_norm > 0 ? backend::clip_coefficient(backend::cpu::global_grad_norm<double>({&view, 1}), max_norm) : 1.0;
    if (max_norm > 0 && step == 1) std::printf("[ops] %-44s clip coefficient %.3e\n", name.c_str(), scale);
    for (int64_t s = 0; s < n_slots; ++s) {
      const int64_t b = offsets[s], len = offsets[s + 1] - b;
      backend::AdamWParams<double> cp;
      cp.param = w.data() + b, cp.grad = gd.data() + b, cp.m = m.data() + b, cp.v = v.data() + b, cp.n = len;
      cp.lr = lr, cp.beta1 = b1, cp.beta2 = b2, cp.eps = eps, cp.weight_decay = wd, cp.decay = decay[s] != 0;
      cp.step = step, cp.grad_scale = scale;
      backend::cpu::adamw_step(cp);
    }
  }
  auto fetch = [&](DeviceArray<float>& a) {
    std::vector<float> all = a.download();
    return std::vector<float>(all.begin() + offset, all.begin() + offset + n);
  };
  const std::vector<float> got_w = fetch(master), got_m = fetch(gm), got_v = fetch(gv);
  // fp32 state, scalars rounded once to fp32: each step rounds each value
  // <= ~10 times (u = 6e-8), so after 3 steps the relative error is
  // <= ~2e-6; measured against |expected| + rms(expected) as expect_close.
  for (auto [got, expected, what] : {std::tuple{&got_w, &w, "master"}, {&got_m, &m, "m"}, {&got_v, &v, "v"}}) {
    expect_close(*got, *expected, 3e-6, name + " " + what);
    std::printf("[ops] %-44s max err %.3e (rtol 3e-6 of |e| + rms)\n", (name + " " + what).c_str(),
                max_abs_diff(widen(*got), *expected));
  }
  std::vector<bf16> rounded(n);
  for (int64_t i = 0; i < n; ++i) rounded[i] = __float2bfloat16_rn(got_w[i]);
  std::vector<bf16> wb = weights.download();
  wb.resize(n);
  expect_same_bits(wb, rounded, name + " weights = bf16(master)");
}

TEST(CudaAdamW, ThreeStepsMatchCpu) {
  DUET_OPS_REQUIRE_GPU();
  DUET_SEEDED_RNG(rng);
  // Gradients of norm ~ sqrt(n/3) · range: max_norm 1 clips hard.
  check_steps(rng, 1000003, 1.0, 1.0, 0, "adamw clipped");
  check_steps(rng, 300001, 1e9, 1e-3, 0, "adamw clip inactive");
  check_steps(rng, 300001, 0.0, 1e-2, 0, "adamw no clipping");
  check_steps(rng, 100003, 1.0, 1.0, 1, "adamw clipped unaligned");
}

TEST(CudaAdamW, Validation) {
  DUET_OPS_REQUIRE_GPU();
  DeviceArray<float> f(16);
  DeviceArray<int64_t> offs(std::vector<int64_t>{0, 16});
  DeviceArray<uint8_t> dec(std::vector<uint8_t>{1});
  bc::AdamWStep p;
  p.master = p.m = p.v = f.get(), p.grads = f.get(), p.n = 16, p.slot_offsets = offs.get(), p.slot_decay = dec.get();
  p.n_slots = 1, p.step = 1, p.lr = 1e-3, p.max_norm = 1.0;
  expect_error([&] { bc::adamw_step(p, nullptr); }, "adamw: grad_norm is null but max_norm (1) clips");
  p.max_norm = 0, p.step = 0;
  expect_error([&] { bc::adamw_step(p, nullptr); }, "adamw: step must be positive");
}

}  // namespace
}  // namespace duet::test::ops
