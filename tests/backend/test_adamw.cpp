// AdamW against the algorithm as written in the paper / PyTorch docs, and the
// global gradient norm.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "backend/adamw.hpp"
#include "helpers.hpp"

namespace duet::test {
namespace {

using backend::AdamWParams;
using backend::GradView;

struct Hyper {
  double lr, beta1, beta2, eps, weight_decay;
  bool decay;
};

// torch.optim.AdamW's documented algorithm (Loshchilov & Hutter, decoupled):
//   theta <- theta - lr * lambda * theta
//   m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
//   m_hat = m / (1 - b1^t);   v_hat = v / (1 - b2^t)
//   theta <- theta - lr * m_hat / (sqrt(v_hat) + eps)
void reference_step(std::vector<double>& theta, std::vector<double>& m, std::vector<double>& v,
                    const std::vector<double>& g, const Hyper& h, int t) {
  for (size_t i = 0; i < theta.size(); ++i) {
    if (h.decay) theta[i] -= h.lr * h.weight_decay * theta[i];
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * g[i];
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * g[i] * g[i];
    const double m_hat = m[i] / (1 - std::pow(h.beta1, t));
    const double v_hat = v[i] / (1 - std::pow(h.beta2, t));
    theta[i] -= h.lr * m_hat / (std::sqrt(v_hat) + h.eps);
  }
}

template <typename S>
void kernel_step(std::vector<S>& theta, std::vector<S>& m, std::vector<S>& v, const std::vector<S>& g,
                 const Hyper& h, int t, double grad_scale) {
  AdamWParams<S> p;
  p.param = theta.data();
  p.grad = g.data();
  p.m = m.data();
  p.v = v.data();
  p.n = static_cast<int64_t>(theta.size());
  p.lr = h.lr;
  p.beta1 = h.beta1;
  p.beta2 = h.beta2;
  p.eps = h.eps;
  p.weight_decay = h.weight_decay;
  p.decay = h.decay;
  p.step = t;
  p.grad_scale = grad_scale;
  backend::cpu::adamw_step(p);
}

TEST(AdamW, MatchesReferenceOverSeveralSteps) {
  DUET_SEEDED_RNG(rng);
  const size_t n = 2000;
  for (Hyper h : {Hyper{1e-3, 0.9, 0.999, 1e-8, 0.01, true}, Hyper{3e-2, 0.8, 0.95, 1e-6, 0.1, true},
                  Hyper{1e-3, 0.9, 0.999, 1e-8, 0.1, false}}) {
    SCOPED_TRACE(::testing::Message() << "lr " << h.lr << " decay " << h.decay);
    std::vector<double> theta = random_values(rng, n), m(n, 0), v(n, 0);
    auto theta_d = theta, m_d = m, v_d = v;
    auto theta_f = cast<float>(theta), m_f = cast<float>(m), v_f = cast<float>(v);
    for (int t = 1; t <= 6; ++t) {
      // Gradients of mixed scale, and a clip factor applied through grad_scale.
      std::vector<double> g = random_values(rng, n, -3, 3);
      const double scale = t % 2 ? 1.0 : 0.37;
      std::vector<double> scaled(n);
      for (size_t i = 0; i < n; ++i) scaled[i] = g[i] * scale;
      reference_step(theta, m, v, scaled, h, t);
      kernel_step(theta_d, m_d, v_d, g, h, t, scale);
      kernel_step(theta_f, m_f, v_f, cast<float>(g), h, t, scale);
      // Same math in double, other operation order: rounding only.
      expect_close(theta_d, theta, 1e-13, "param double, step " + std::to_string(t));
      expect_close(m_d, m, 1e-13, "m double");
      expect_close(v_d, v, 1e-13, "v double");
      // fp32: parameters move by ~lr per step; relative error of a few ulp.
      expect_close(theta_f, theta, 1e-6, "param float, step " + std::to_string(t));
      expect_close(m_f, m, 1e-5, "m float");
      expect_close(v_f, v, 1e-5, "v float");
    }
    // Decay off really leaves the decay out (the runs are not trivially equal).
    if (!h.decay) {
      auto p = theta, mm = m, vv = v;
      std::vector<double> g = random_values(rng, n);
      Hyper with = h;
      with.decay = true;
      reference_step(p, mm, vv, g, with, 7);
      kernel_step(theta_d, m_d, v_d, g, h, 7, 1.0);
      double diff = 0;
      for (size_t i = 0; i < n; ++i) diff = std::max(diff, std::abs(p[i] - theta_d[i]));
      EXPECT_GT(diff, 1e-6);
    }
  }
}

TEST(AdamW, RejectsBadHyperparameters) {
  std::vector<float> x(4, 1.0f), g(4, 1.0f), m(4, 0.0f), v(4, 0.0f);
  AdamWParams<float> p;
  p.param = x.data();
  p.grad = g.data();
  p.m = m.data();
  p.v = v.data();
  p.n = 4;
  p.lr = 1e-3;
  p.step = 0;
  EXPECT_THROW(backend::cpu::adamw_step(p), Error);  // steps count from 1
  p.step = 1;
  p.beta2 = 1.0;
  EXPECT_THROW(backend::cpu::adamw_step(p), Error);
  p.beta2 = 0.999;
  p.grad = nullptr;
  EXPECT_THROW(backend::cpu::adamw_step(p), Error);
}

TEST(GradNorm, SumsSquaresAcrossTensorsDeterministically) {
  DUET_SEEDED_RNG(rng);
  std::vector<std::vector<float>> grads;
  for (int64_t size : {1, 70000, 0, 123457, 33})
    grads.push_back(cast<float>(random_values(rng, size, -2, 2)));
  std::vector<GradView<float>> views;
  long double want = 0;
  for (auto& g : grads) {
    views.push_back({g.data(), static_cast<int64_t>(g.size())});
    for (float x : g) want += (long double)x * x;
  }
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one = backend::cpu::global_grad_norm<float>(views);
  omp_set_num_threads(3);
  const double three = backend::cpu::global_grad_norm<float>(views);
  omp_set_num_threads(saved);
  EXPECT_EQ(one, three);
  EXPECT_NEAR(one, std::sqrt(double(want)), 1e-12 * std::sqrt(double(want)));

  // clip_grad_norm_'s coefficient: max_norm / (norm + 1e-6), at most 1.
  EXPECT_EQ(backend::clip_coefficient(0.5, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(backend::clip_coefficient(one, 1.0), 1.0 / (one + 1e-6));
  grads[1][17] = NAN;
  EXPECT_TRUE(std::isnan(backend::cpu::global_grad_norm<float>(views)));
  EXPECT_THROW(backend::clip_coefficient(1.0, 0.0), Error);
}

}  // namespace
}  // namespace duet::test
