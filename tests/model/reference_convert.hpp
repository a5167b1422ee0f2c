#pragma once
// Reference fp32 -> bf16 / fp16 conversions written from the definition of each
// format: round |x| to the nearest multiple of the format's spacing at x (ties
// to even, via nearbyint in double) and encode the result. Independent of the
// bit tricks in model/dtype.cpp.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace duet::model::test {

// Decodes from the field definitions.
inline double ref_fp16_value(uint16_t h) {
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (exp == 31) return mant ? std::nan("") : sign * INFINITY;
  if (exp == 0) return sign * std::ldexp(mant, -24);
  return sign * std::ldexp(1024 + mant, exp - 25);
}

inline double ref_bf16_value(uint16_t b) {
  const int exp = (b >> 7) & 0xff;
  const int mant = b & 0x7f;
  const double sign = (b & 0x8000) ? -1.0 : 1.0;
  if (exp == 255) return mant ? std::nan("") : sign * INFINITY;
  if (exp == 0) return sign * std::ldexp(mant, -133);
  return sign * std::ldexp(128 + mant, exp - 134);
}

// Rounds |x| to a multiple of the spacing of a format with `mant_bits` stored
// mantissa bits and smallest normal exponent `min_exp`.
inline double ref_round(double a, int mant_bits, int min_exp) {
  int e;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  const int exponent = std::max(e - 1, min_exp);
  const double quantum = std::ldexp(1.0, exponent - mant_bits);
  return std::nearbyint(a / quantum) * quantum;  // default rounding mode: ties to even
}

inline uint16_t ref_to_fp16(float x) {
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  const double a = std::fabs(double{x});
  if (std::isinf(a)) return sign | 0x7c00;
  const double q = ref_round(a, 10, -14);
  if (q > 65504.0) return sign | 0x7c00;
  if (q < std::ldexp(1.0, -14)) return sign | static_cast<uint16_t>(q / std::ldexp(1.0, -24));
  int e;
  const double m = std::frexp(q, &e);  // q = m * 2^e
  const int exponent = e - 1;
  const auto mant = static_cast<uint16_t>((m * 2 - 1) * 1024);
  return sign | static_cast<uint16_t>((exponent + 15) << 10) | mant;
}

inline uint16_t ref_to_bf16(float x) {
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
  const double a = std::fabs(double{x});
  if (std::isinf(a)) return sign | 0x7f80;
  const double q = ref_round(a, 7, -126);
  if (q > ref_bf16_value(0x7f7f)) return sign | 0x7f80;
  // Every bf16 value is an fp32 value whose low 16 bits are zero.
  return sign | static_cast<uint16_t>(std::bit_cast<uint32_t>(static_cast<float>(q)) >> 16);
}

// What a value reads back as after being stored in that format.
inline float ref_stored_fp16(float x) {
  return std::isnan(x) ? x : static_cast<float>(ref_fp16_value(ref_to_fp16(x)));
}
inline float ref_stored_bf16(float x) {
  return std::isnan(x) ? x : static_cast<float>(ref_bf16_value(ref_to_bf16(x)));
}

}  // namespace duet::model::test
