// Built with -ffp-contract=off: a fused multiply-add would round differently
// from PyTorch's separate element-wise kernels.
#include "model/rope.hpp"

#include <cmath>
#include <numbers>

namespace duet::model {

namespace {

// 1 / base^(2i/dim), with torch's steps: arange(0, dim, 2).float() / dim in
// fp32, the Python float base cast to fp32, pow in fp32, then 1.0 / x in fp32.
std::vector<float> default_frequencies(double theta, int64_t dim) {
  const auto base = static_cast<float>(theta);
  std::vector<float> inv_freq;
  for (int64_t i = 0; i < dim; i += 2) {
    const float exponent = static_cast<float>(i) / static_cast<float>(dim);
    // pow evaluated in double then rounded: the correctly rounded fp32 result
    // (torch's vectorised powf is within 1 ulp of it).
    const auto power = static_cast<float>(std::pow(static_cast<double>(base), double{exponent}));
    inv_freq.push_back(1.0f / power);
  }
  return inv_freq;
}

// _compute_llama3_parameters: long wavelengths are divided by `factor`, short
// ones kept, and the band between interpolated smoothly. Python scalars meet
// fp32 tensors, so each is cast to fp32 before the element-wise operation, and
// `scalar / tensor` is torch's Tensor.__rtruediv__: reciprocal(tensor) * scalar.
void apply_llama3(const RopeScaling& s, std::vector<float>& inv_freq) {
  const auto factor = static_cast<float>(s.factor);
  const auto low = static_cast<float>(s.low_freq_factor);
  const auto old_context = static_cast<float>(s.original_max_position_embeddings);
  const auto low_freq_wavelen =
      static_cast<float>(static_cast<double>(s.original_max_position_embeddings) / s.low_freq_factor);
  const auto high_freq_wavelen = static_cast<float>(
      static_cast<double>(s.original_max_position_embeddings) / s.high_freq_factor);
  const auto band = static_cast<float>(s.high_freq_factor - s.low_freq_factor);
  const auto two_pi = static_cast<float>(2 * std::numbers::pi);
  for (float& f : inv_freq) {
    const float wavelen = (1.0f / f) * two_pi;
    const float scaled = wavelen > low_freq_wavelen ? f / factor : f;
    const float smooth = ((1.0f / wavelen) * old_context - low) / band;
    const float smoothed = (1.0f - smooth) * scaled / factor + smooth * scaled;
    const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    f = medium ? smoothed : scaled;
  }
}

}  // namespace

std::vector<float> rope_inverse_frequencies(const ModelConfig& config) {
  auto inv_freq = default_frequencies(config.rope_theta, config.head_dim);
  switch (config.rope_scaling.type) {
    case RopeType::Default: break;
    case RopeType::Linear:
      for (float& f : inv_freq) f /= static_cast<float>(config.rope_scaling.factor);
      break;
    case RopeType::Llama3: apply_llama3(config.rope_scaling, inv_freq); break;
  }
  return inv_freq;
}

}  // namespace duet::model
