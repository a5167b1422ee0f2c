#include "attention_helpers.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "backend/attention.hpp"
#include "backend/cuda/attention.hpp"

namespace duet::test {

uint16_t to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

double from_bf16(uint16_t b) {
  const uint32_t u = uint32_t{b} << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

namespace {

float round_bf16(float x) { return static_cast<float>(from_bf16(to_bf16(x))); }

std::vector<uint16_t> random_bf16(std::mt19937_64& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<uint16_t> v(n);
  for (uint16_t& x : v) x = to_bf16(dist(rng));
  return v;
}

std::vector<double> widen(const std::vector<uint16_t>& v) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = from_bf16(v[i]);
  return out;
}

void check_cuda(cudaError_t e, const char* what) {
  ASSERT_EQ(e, cudaSuccess) << what << ": " << cudaGetErrorString(e);
}

template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  explicit DeviceBuffer(size_t n) {
    check_cuda(cudaMalloc(&ptr, std::max<size_t>(n, 1) * sizeof(T)), "cudaMalloc");
    check_cuda(cudaMemset(ptr, 0xff, std::max<size_t>(n, 1) * sizeof(T)), "poison");  // NaN bits
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

}  // namespace

std::string AttnCase::describe() const {
  return "T=" + std::to_string(n) + " Hq=" + std::to_string(hq) + " Hkv=" + std::to_string(hkv) +
         " D=" + std::to_string(dim) + " window=" + std::to_string(window) +
         " used=" + std::to_string(forest.used);
}

AttnCase make_attn_case(std::mt19937_64& rng, int64_t n, int64_t hq, int64_t hkv, int64_t dim,
                        int64_t window, const ForestShape& shape) {
  AttnCase c;
  c.n = n, c.hq = hq, c.hkv = hkv, c.dim = dim, c.window = window;
  c.forest = random_forest(rng, n, shape);
  // Scores of a few units (std ~4/3 after the 1/sqrt(D) scale) so the softmax
  // is neither flat nor one-hot.
  c.q = random_bf16(rng, n * hq * dim, -2, 2);
  c.k = random_bf16(rng, n * hkv * dim, -2, 2);
  c.v = random_bf16(rng, n * hkv * dim, -1, 1);
  c.d_o = random_bf16(rng, n * hq * dim, -1, 1);
  return c;
}

AttnOutputs run_gpu_attention(const AttnCase& c, bool classify_tiles) {
  namespace cu = backend::cuda;
  const int64_t n = c.n, D = c.dim, qrow = c.hq * D, kvrow = c.hkv * D, fused = qrow + 2 * kvrow;
  // Fused QKV (and dQKV) rows: [q heads | k heads | v heads].
  std::vector<uint16_t> qkv(n * fused);
  for (int64_t i = 0; i < n; ++i) {
    std::copy_n(c.q.begin() + i * qrow, qrow, qkv.begin() + i * fused);
    std::copy_n(c.k.begin() + i * kvrow, kvrow, qkv.begin() + i * fused + qrow);
    std::copy_n(c.v.begin() + i * kvrow, kvrow, qkv.begin() + i * fused + qrow + kvrow);
  }
  DeviceBuffer<uint16_t> d_qkv(n * fused), d_o(n * qrow), d_do(n * qrow), d_dqkv(n * fused);
  DeviceBuffer<float> d_lse(n * c.hq);
  DeviceBuffer<int32_t> d_vu(n), d_pos(n);
  check_cuda(cudaMemcpy(d_qkv.ptr, qkv.data(), qkv.size() * 2, cudaMemcpyHostToDevice), "qkv");
  check_cuda(cudaMemcpy(d_do.ptr, c.d_o.data(), c.d_o.size() * 2, cudaMemcpyHostToDevice), "do");
  check_cuda(cudaMemcpy(d_vu.ptr, c.forest.visible_until.data(), n * 4, cudaMemcpyHostToDevice), "vu");
  check_cuda(cudaMemcpy(d_pos.ptr, c.forest.position.data(), n * 4, cudaMemcpyHostToDevice), "pos");

  backend::AttentionShape s;
  s.n_tokens = n;
  s.n_q_heads = c.hq;
  s.n_kv_heads = c.hkv;
  s.head_dim = D;
  s.visible_until = d_vu.ptr;
  s.positions = d_pos.ptr;
  s.window = c.window;
  s.classify_tiles = classify_tiles;
  DeviceBuffer<unsigned char> ws(cu::attention_workspace_bytes(s));
  cu::attention_plan(s, ws.ptr, nullptr);

  auto* qkv_ptr = reinterpret_cast<const cu::bf16*>(d_qkv.ptr);
  auto* dqkv_ptr = reinterpret_cast<cu::bf16*>(d_dqkv.ptr);
  cu::AttentionForward f;
  static_cast<backend::AttentionShape&>(f) = s;
  f.q = qkv_ptr;
  f.k = qkv_ptr + qrow;
  f.v = qkv_ptr + qrow + kvrow;
  f.o = reinterpret_cast<cu::bf16*>(d_o.ptr);
  f.lse = d_lse.ptr;
  f.q_row_stride = f.k_row_stride = f.v_row_stride = fused;
  f.o_row_stride = qrow;
  f.workspace = ws.ptr;
  cu::attention_forward(f, nullptr);

  cu::AttentionBackward b;
  static_cast<backend::AttentionShape&>(b) = s;
  b.q = f.q, b.k = f.k, b.v = f.v, b.o = f.o;
  b.d_o = reinterpret_cast<const cu::bf16*>(d_do.ptr);
  b.lse = d_lse.ptr;
  b.dq = dqkv_ptr;
  b.dk = dqkv_ptr + qrow;
  b.dv = dqkv_ptr + qrow + kvrow;
  b.q_row_stride = b.k_row_stride = b.v_row_stride = fused;
  b.dq_row_stride = b.dk_row_stride = b.dv_row_stride = fused;
  b.o_row_stride = b.do_row_stride = qrow;
  b.workspace = ws.ptr;
  cu::attention_backward(b, nullptr);
  check_cuda(cudaDeviceSynchronize(), "attention kernels");

  std::vector<uint16_t> o(n * qrow), dqkv(n * fused);
  std::vector<float> lse(n * c.hq);
  check_cuda(cudaMemcpy(o.data(), d_o.ptr, o.size() * 2, cudaMemcpyDeviceToHost), "o");
  check_cuda(cudaMemcpy(dqkv.data(), d_dqkv.ptr, dqkv.size() * 2, cudaMemcpyDeviceToHost), "dqkv");
  check_cuda(cudaMemcpy(lse.data(), d_lse.ptr, lse.size() * 4, cudaMemcpyDeviceToHost), "lse");
  AttnOutputs r;
  r.o = widen(o);
  r.lse.assign(lse.begin(), lse.end());
  for (int64_t i = 0; i < n; ++i) {
    const auto row = dqkv.begin() + i * fused;
    for (int64_t e = 0; e < qrow; ++e) r.dq.push_back(from_bf16(row[e]));
    for (int64_t e = 0; e < kvrow; ++e) r.dk.push_back(from_bf16(row[qrow + e]));
    for (int64_t e = 0; e < kvrow; ++e) r.dv.push_back(from_bf16(row[qrow + kvrow + e]));
  }
  return r;
}

AttnOutputs run_reference_attention(const AttnCase& c) {
  const std::vector<double> q = widen(c.q), k = widen(c.k), v = widen(c.v), d_o = widen(c.d_o);
  AttnOutputs r{poisoned<double>(q.size()), poisoned<double>(c.n * c.hq), poisoned<double>(q.size()),
                poisoned<double>(k.size()), poisoned<double>(v.size())};
  backend::AttentionParams<double> f;
  f.n_tokens = c.n;
  f.n_q_heads = c.hq;
  f.n_kv_heads = c.hkv;
  f.head_dim = c.dim;
  f.visible_until = c.forest.visible_until.data();
  f.positions = c.forest.position.data();
  f.window = c.window;
  f.set_packed_strides();
  f.q = q.data(), f.k = k.data(), f.v = v.data(), f.o = r.o.data(), f.lse = r.lse.data();
  backend::cpu::attention_forward(f);
  backend::AttentionBackwardParams<double> b;
  static_cast<backend::AttentionShape&>(b) = f;
  b.set_packed_strides();
  b.q = q.data(), b.k = k.data(), b.v = v.data(), b.o = r.o.data(), b.lse = r.lse.data();
  b.d_o = d_o.data(), b.dq = r.dq.data(), b.dk = r.dk.data(), b.dv = r.dv.data();
  backend::cpu::attention_backward(b);
  return r;
}

AttnOutputs run_naive_bf16_attention(const AttnCase& c) {
  const int64_t n = c.n, D = c.dim, hq = c.hq, hkv = c.hkv, rep = hq / hkv;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  auto f = [](const std::vector<uint16_t>& x) {
    std::vector<float> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = static_cast<float>(from_bf16(x[i]));
    return y;
  };
  const std::vector<float> q = f(c.q), k = f(c.k), v = f(c.v), d_o = f(c.d_o);
  AttnOutputs r{std::vector<double>(n * hq * D), {}, std::vector<double>(n * hq * D),
                std::vector<double>(n * hkv * D, 0), std::vector<double>(n * hkv * D, 0)};
  // Per query head: dK_h and dV_h (bf16), summed over the group in fp32 then rounded.
  std::vector<float> dk_h(hq * n * D), dv_h(hq * n * D);
  const auto& vu = c.forest.visible_until;
  const auto& pos = c.forest.position;
#pragma omp parallel for schedule(dynamic)
  for (int64_t h = 0; h < hq; ++h) {
    const int64_t g = h / rep;
    auto qi = [&](int64_t i) { return q.data() + (i * hq + h) * D; };
    auto kj = [&](int64_t j) { return k.data() + (j * hkv + g) * D; };
    auto vj = [&](int64_t j) { return v.data() + (j * hkv + g) * D; };
    auto doi = [&](int64_t i) { return d_o.data() + (i * hq + h) * D; };
    std::vector<float> p32(n * n, 0), p(n * n, 0), ds(n * n, 0);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<float> s(n, -std::numeric_limits<float>::infinity());
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < n; ++j) {
        if (!backend::attention_visible(i, j, vu.data(), pos.data(), c.window)) continue;
        float dot = 0;
        for (int64_t d = 0; d < D; ++d) dot += qi(i)[d] * kj(j)[d];
        s[j] = round_bf16(round_bf16(dot) * scale);
        mx = std::max(mx, s[j]);
      }
      float sum = 0;
      for (int64_t j = 0; j < n; ++j) sum += std::exp(s[j] - mx);
      for (int64_t j = 0; j < n; ++j) {
        p32[i * n + j] = std::exp(s[j] - mx) / sum;
        p[i * n + j] = round_bf16(p32[i * n + j]);
      }
      for (int64_t d = 0; d < D; ++d) {
        float acc = 0;
        for (int64_t j = 0; j < n; ++j) acc += p[i * n + j] * vj(j)[d];
        r.o[(i * hq + h) * D + d] = round_bf16(acc);
      }
      // dP = bf16(dO Vᵀ); softmax backward in fp32 on the fp32 softmax output.
      std::vector<float> dp(n, 0);
      float pdp = 0;
      for (int64_t j = 0; j < n; ++j) {
        float acc = 0;
        for (int64_t d = 0; d < D; ++d) acc += doi(i)[d] * vj(j)[d];
        dp[j] = round_bf16(acc);
        pdp += p32[i * n + j] * dp[j];
      }
      for (int64_t j = 0; j < n; ++j)
        ds[i * n + j] = round_bf16(round_bf16(p32[i * n + j] * (dp[j] - pdp)) * scale);
    }
    for (int64_t i = 0; i < n; ++i)
      for (int64_t d = 0; d < D; ++d) {
        float acc = 0;
        for (int64_t j = 0; j < n; ++j) acc += ds[i * n + j] * kj(j)[d];
        r.dq[(i * hq + h) * D + d] = round_bf16(acc);
      }
    for (int64_t j = 0; j < n; ++j)
      for (int64_t d = 0; d < D; ++d) {
        float ak = 0, av = 0;
        for (int64_t i = j; i < n; ++i) {
          ak += ds[i * n + j] * qi(i)[d];
          av += p[i * n + j] * doi(i)[d];
        }
        dk_h[(h * n + j) * D + d] = round_bf16(ak);
        dv_h[(h * n + j) * D + d] = round_bf16(av);
      }
  }
  for (int64_t g = 0; g < hkv; ++g)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t d = 0; d < D; ++d) {
        float ak = 0, av = 0;
        for (int64_t h = g * rep; h < (g + 1) * rep; ++h) {
          ak += dk_h[(h * n + j) * D + d];
          av += dv_h[(h * n + j) * D + d];
        }
        r.dk[(j * hkv + g) * D + d] = round_bf16(ak);
        r.dv[(j * hkv + g) * D + d] = round_bf16(av);
      }
  return r;
}

namespace {

// max |a - b|, NaN if any element is NaN.
double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double err = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(a[i] - b[i]);
    if (std::isnan(d)) return std::numeric_limits<double>::quiet_NaN();
    err = std::max(err, d);
  }
  return err;
}

double max_abs(const std::vector<double>& a) {
  double m = 0;
  for (double x : a) m = std::max(m, std::abs(x));
  return m;
}

}  // namespace

void expect_flash_criterion(const AttnOutputs& gpu, const AttnOutputs& ref,
                            const AttnOutputs& naive, const std::string& what) {
  SCOPED_TRACE(what);
  const std::pair<const char*, const std::vector<double> AttnOutputs::*> tensors[] = {
      {"o", &AttnOutputs::o}, {"dq", &AttnOutputs::dq}, {"dk", &AttnOutputs::dk},
      {"dv", &AttnOutputs::dv}};
  // fp32's floor, 1e-6 of the outputs' common scale: where an exact value is
  // 0 (a padding-only row attends to itself alone, so dS = P (dP - D) = 0),
  // the kernels' dP = dO·V and D = Σ dO∘O are fp32 sums taken in other
  // orders and leave ~1e-7 of dq and dk, while the naive computation may
  // happen to cancel exactly; seen with DUET_TEST_SEED=17644565860551963230.
  double scale = 0;
  for (auto [name, member] : tensors) scale = std::max(scale, max_abs(ref.*member));
  for (auto [name, member] : tensors) {
    ASSERT_EQ((gpu.*member).size(), (ref.*member).size()) << name;
    const double e_gpu = max_abs_diff(gpu.*member, ref.*member);
    const double e_naive = max_abs_diff(naive.*member, ref.*member);
    const double slack = 1e-6 * scale;
    std::printf("[criterion] %s %-3s gpu %.3e naive_bf16 %.3e ratio %.2f\n", what.c_str(), name,
                e_gpu, e_naive, e_gpu / e_naive);
    EXPECT_LE(e_gpu, 2 * e_naive + slack) << name << ": max|gpu - ref| " << e_gpu
                                          << " vs max|naive bf16 - ref| " << e_naive;
  }
  const double e_lse = max_abs_diff(gpu.lse, ref.lse);
  std::printf("[criterion] %s lse gpu %.3e (bound 1e-3)\n", what.c_str(), e_lse);
  EXPECT_LE(e_lse, 1e-3) << "lse";
}

}  // namespace duet::test
