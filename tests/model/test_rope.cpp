// RoPE inverse frequencies: hand-derived values for a tiny config, and an
// independent double-precision re-implementation of the published formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "helpers.hpp"
#include "model/rope.hpp"

namespace duet::model {
namespace {

ModelConfig tiny(int64_t head_dim, double theta) {
  ModelConfig c;
  c.vocab_size = 10;
  c.num_attention_heads = c.num_key_value_heads = 1;
  c.hidden_size = c.head_dim = head_dim;
  c.intermediate_size = c.num_hidden_layers = 1;
  c.max_position_embeddings = 64;
  c.rope_theta = theta;
  return c;
}

// 1 / theta^(2i / d), i = 0 .. d/2 - 1 (RoFormer).
std::vector<double> reference_default(double theta, int64_t d) {
  std::vector<double> out;
  for (int64_t i = 0; i < d / 2; ++i) out.push_back(1.0 / std::pow(theta, 2.0 * i / d));
  return out;
}

// Llama 3.1's apply_scaling, written from its description: wavelengths shorter
// than original/high_freq_factor keep their frequency, longer than
// original/low_freq_factor are divided by factor, and in between the two are
// blended with weight smooth = (original / wavelength - low) / (high - low).
std::vector<double> reference_llama3(const std::vector<double>& freqs, const RopeScaling& s) {
  const double low_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
  const double high_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
  std::vector<double> out;
  for (double f : freqs) {
    const double wavelen = 2 * std::numbers::pi / f;
    if (wavelen < high_wavelen) {
      out.push_back(f);
    } else if (wavelen > low_wavelen) {
      out.push_back(f / s.factor);
    } else {
      const double smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      out.push_back((1 - smooth) * f / s.factor + smooth * f);
    }
  }
  return out;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double rel) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i], want[i], rel * want[i]) << "index " << i;
}

TEST(Rope, HandDerivedLlama3Values) {
  // head_dim 8, theta 10^4: frequencies 10^0, 10^-1, 10^-2, 10^-3, wavelengths
  // 2*pi*10^k = 6.283, 62.83, 628.3, 6283. With original length 64 and
  // low/high factors 1/4 the thresholds are 64 and 16: the first is kept, the
  // last two are divided by 8, and 62.83 lies in the band:
  //   smooth = (64 / 62.83185 - 1) / 3 = 0.0061972
  //   0.1 * ((1 - smooth) / 8 + smooth) = 0.1 * (0.1242254 + 0.0061972) = 0.01304226
  auto c = tiny(8, 10000.0);
  c.rope_scaling = {RopeType::Llama3, 8.0, 1.0, 4.0, 64};
  expect_close(rope_inverse_frequencies(c), {1.0, 0.01304226, 0.00125, 0.000125}, 1e-6);
  c.rope_scaling = {};
  expect_close(rope_inverse_frequencies(c), {1.0, 0.1, 0.01, 0.001}, 1e-6);
  c.rope_scaling = {RopeType::Linear, 4.0, 0, 0, 0};
  expect_close(rope_inverse_frequencies(c), {0.25, 0.025, 0.0025, 0.00025}, 1e-6);
}

TEST(Rope, Llama31ConfigKeepsShortAndScalesLongWavelengths) {
  auto c = tiny(128, 500000.0);
  c.rope_scaling = {RopeType::Llama3, 8.0, 1.0, 4.0, 8192};
  const auto got = rope_inverse_frequencies(c);
  const auto base = reference_default(500000.0, 128);
  ASSERT_EQ(got.size(), 64u);
  int kept = 0, scaled = 0, blended = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double wavelen = 2 * std::numbers::pi / base[i];
    if (wavelen < 2048) {
      EXPECT_NEAR(got[i], base[i], 1e-6 * base[i]);
      ++kept;
    } else if (wavelen > 8192) {
      EXPECT_NEAR(got[i], base[i] / 8, 1e-6 * base[i] / 8);
      ++scaled;
    } else {
      EXPECT_LT(got[i], base[i]);
      EXPECT_GT(got[i], base[i] / 8);
      ++blended;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(scaled, 0);
  EXPECT_GT(blended, 0);
}

TEST(Rope, RandomConfigsMatchTheReferenceFormulas) {
  DUET_SEEDED_RNG(rng);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int trial = 0; trial < 500; ++trial) {
    const int64_t head_dim = 2 * std::uniform_int_distribution<int64_t>(1, 128)(rng);
    const double theta = std::pow(10.0, 3 + 4 * unit(rng));
    auto c = tiny(head_dim, theta);
    const auto base = reference_default(theta, head_dim);
    expect_close(rope_inverse_frequencies(c), base, 2e-6);

    c.rope_scaling = {RopeType::Linear, 1 + 31 * unit(rng), 0, 0, 0};
    std::vector<double> linear;
    for (double f : base) linear.push_back(f / c.rope_scaling.factor);
    expect_close(rope_inverse_frequencies(c), linear, 2e-6);

    const double low = 0.5 + 1.5 * unit(rng);
    c.rope_scaling = {RopeType::Llama3, 1 + 63 * unit(rng), low, low + 0.5 + 7.5 * unit(rng),
                      std::uniform_int_distribution<int64_t>(256, 16384)(rng)};
    // In the blended band fp32 rounding of `smooth` (a difference of nearby
    // values) is amplified by up to `factor`: allow 1e-4 there, 2e-6 elsewhere.
    const auto got = rope_inverse_frequencies(c);
    const auto want = reference_llama3(base, c.rope_scaling);
    const auto& s = c.rope_scaling;
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      const double wavelen = 2 * std::numbers::pi / base[i];
      const bool band = wavelen > 0.999 * s.original_max_position_embeddings / s.high_freq_factor &&
                        wavelen < 1.001 * s.original_max_position_embeddings / s.low_freq_factor;
      EXPECT_NEAR(got[i], want[i], (band ? 1e-4 : 2e-6) * want[i]) << "index " << i;
    }
    if (HasFailure()) return;
  }
}

}  // namespace
}  // namespace duet::model
