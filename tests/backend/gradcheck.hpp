#pragma once
// The generic gradient check every op uses (in the spirit of ggml's
// test-backend-ops): run the op in double, take the scalar loss
// L = sum_k out_k . R_k with random R_k, feed R_k to the backward as the
// incoming gradients, and compare every input gradient with the central
// difference (L(x + h) - L(x - h)) / 2h, for every element or a random subset.
//
// Tolerance, 1e-6 relative: in double the central difference's truncation
// error is ~h^2 |L'''| / 6 ~ 1e-11 and its rounding error ~eps |L| / h ~ 1e-11
// x the loss's magnitude (h = 1e-5, eps = 1.1e-16), so a correct backward
// agrees to ~1e-8 or better on O(1) gradients, while a wrong formula is off by
// O(1). The bound is relative to max(|analytic|, |numeric|, mean |analytic| of
// the tensor) so that elements whose gradient is near zero are not held to an
// impossible relative standard.
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace duet::test {

struct GradCheck {
  struct Input {
    std::string name;
    std::vector<double>* value;  // perturbed in place by the check
    std::vector<double>* grad;   // written by `backward`
    bool accumulates = false;    // backward adds (+=) into grad instead of writing it
  };
  std::vector<Input> inputs;
  // Differentiable outputs: poisoned (NaN) before each forward, must all be written.
  std::vector<std::vector<double>*> outputs;
  // Incoming gradients, one per output: the harness sizes and fills them.
  std::vector<std::vector<double>> d_outputs;
  std::function<void()> forward;   // inputs -> outputs (and anything saved for backward)
  std::function<void()> backward;  // d_outputs and saved state -> input gradients
  size_t max_checks_per_input = 150;
  double step = 1e-5;
  double rtol = 1e-6;
};

void run_gradcheck(GradCheck& check, std::mt19937_64& rng);

}  // namespace duet::test
