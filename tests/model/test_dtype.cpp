// fp32 <-> bf16 / fp16 conversions against the plain references of
// reference_convert.hpp, exhaustively over 16-bit patterns, ties and randoms.
#include <gtest/gtest.h>

#include <bit>
#include <cfenv>
#include <cmath>

#include "helpers.hpp"
#include "model/dtype.hpp"
#include "reference_convert.hpp"

namespace duet::model {
namespace {

using namespace test;

bool fp16_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }
bool bf16_is_nan(uint16_t b) { return (b & 0x7f80) == 0x7f80 && (b & 0x7f) != 0; }

void expect_fp16(float x) {
  const uint16_t got = float_to_fp16(x);
  if (std::isnan(x)) {
    EXPECT_TRUE(fp16_is_nan(got)) << std::hex << got;
    EXPECT_EQ(got & 0x8000, std::signbit(x) ? 0x8000 : 0);
  } else {
    EXPECT_EQ(got, ref_to_fp16(x)) << std::hexfloat << x;
  }
}

void expect_bf16(float x) {
  const uint16_t got = float_to_bf16(x);
  if (std::isnan(x)) {
    EXPECT_TRUE(bf16_is_nan(got)) << std::hex << got;
    EXPECT_EQ(got & 0x8000, std::signbit(x) ? 0x8000 : 0);
  } else {
    EXPECT_EQ(got, ref_to_bf16(x)) << std::hexfloat << x;
  }
}

TEST(DType, NamesRoundTripAndSizes) {
  for (const char* name : {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16", "U16",
                           "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64", "C64", "F4",
                           "F6_E2M3", "F6_E3M2"}) {
    const auto d = parse_dtype(name);
    ASSERT_TRUE(d) << name;
    EXPECT_EQ(dtype_name(*d), name);
  }
  EXPECT_FALSE(parse_dtype("bf16"));
  EXPECT_FALSE(parse_dtype("Q4_K"));
  EXPECT_EQ(dtype_bits(DType::BF16), 16u);
  EXPECT_EQ(dtype_bits(DType::F32), 32u);
  EXPECT_EQ(dtype_bits(DType::I64), 64u);
  EXPECT_EQ(dtype_bits(DType::F4), 4u);
  EXPECT_TRUE(is_float_dtype(DType::F16));
  EXPECT_FALSE(is_float_dtype(DType::F64));
}

TEST(DType, DecodesEvery16BitPattern) {
  ASSERT_EQ(std::fegetround(), FE_TONEAREST);
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const auto b = static_cast<uint16_t>(bits);
    const double h = ref_fp16_value(b), f = ref_bf16_value(b);
    if (std::isnan(h)) {
      EXPECT_TRUE(std::isnan(fp16_to_float(b)));
    } else {
      EXPECT_EQ(double{fp16_to_float(b)}, h) << std::hex << bits;
    }
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_to_float(b)));
    } else {
      EXPECT_EQ(double{bf16_to_float(b)}, f) << std::hex << bits;
    }
    // Every 16-bit value is exact in fp32, so encoding it back is the identity.
    if (!fp16_is_nan(b)) {
      EXPECT_EQ(float_to_fp16(fp16_to_float(b)), b);
    }
    if (!bf16_is_nan(b)) {
      EXPECT_EQ(float_to_bf16(bf16_to_float(b)), b);
    }
  }
}

// Midpoints between neighbouring 16-bit values are exact in fp32: they are the
// ties, and their fp32 neighbours must round to the nearer side.
TEST(DType, RoundsTiesToEvenAndNeighboursToNearest) {
  for (uint32_t bits = 0; bits < 0x7c00; ++bits) {  // positive finite fp16, up to 65504
    const double lo = ref_fp16_value(static_cast<uint16_t>(bits));
    const double hi = bits + 1 == 0x7c00 ? 65536.0 : ref_fp16_value(static_cast<uint16_t>(bits + 1));
    const auto mid = static_cast<float>((lo + hi) / 2);
    ASSERT_EQ(double{mid}, (lo + hi) / 2);
    const uint16_t even = (bits & 1) ? static_cast<uint16_t>(bits + 1) : static_cast<uint16_t>(bits);
    EXPECT_EQ(float_to_fp16(mid), even) << std::hex << bits;
    EXPECT_EQ(float_to_fp16(-mid), 0x8000 | even) << std::hex << bits;
    expect_fp16(mid);
    expect_fp16(std::nextafter(mid, 0.f));
    expect_fp16(std::nextafter(mid, INFINITY));
  }
  for (uint32_t bits = 0; bits < 0x7f80; ++bits) {  // positive finite bf16
    const double lo = ref_bf16_value(static_cast<uint16_t>(bits));
    const double hi = bits + 1 == 0x7f80 ? std::ldexp(1.0, 128)
                                         : ref_bf16_value(static_cast<uint16_t>(bits + 1));
    const double mid_exact = (lo + hi) / 2;
    if (mid_exact > std::numeric_limits<float>::max()) continue;  // past fp32's range
    const auto mid = static_cast<float>(mid_exact);
    ASSERT_EQ(double{mid}, mid_exact);
    const uint16_t even = (bits & 1) ? static_cast<uint16_t>(bits + 1) : static_cast<uint16_t>(bits);
    EXPECT_EQ(float_to_bf16(mid), even) << std::hex << bits;
    expect_bf16(mid);
    expect_bf16(std::nextafter(mid, 0.f));
    expect_bf16(std::nextafter(mid, INFINITY));
  }
}

TEST(DType, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(float_to_fp16(inf), 0x7c00);
  EXPECT_EQ(float_to_fp16(-inf), 0xfc00);
  EXPECT_EQ(float_to_bf16(inf), 0x7f80);
  EXPECT_EQ(float_to_bf16(-inf), 0xff80);
  EXPECT_EQ(float_to_fp16(65504.f), 0x7bff);
  EXPECT_EQ(float_to_fp16(std::nextafter(65520.f, 0.f)), 0x7bff);
  EXPECT_EQ(float_to_fp16(65520.f), 0x7c00);  // the tie past the largest value overflows
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(float_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(float_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(float_to_fp16(std::ldexp(1.f, -25)), 0x0000);  // tie between 0 and the smallest subnormal
  EXPECT_EQ(float_to_fp16(std::nextafter(std::ldexp(1.f, -25), 1.f)), 0x0001);
  EXPECT_EQ(float_to_fp16(std::ldexp(3.f, -25)), 0x0002);  // tie 1.5 units -> 2
  // NaN payloads that truncation would turn into Inf stay NaN, signs kept.
  for (uint32_t payload : {0x1u, 0x1fffu, 0x400000u, 0x7fffffu}) {
    for (uint32_t sign : {0u, 0x80000000u}) {
      const float nan = std::bit_cast<float>(sign | 0x7f800000u | payload);
      expect_fp16(nan);
      expect_bf16(nan);
      EXPECT_TRUE(std::isnan(fp16_to_float(float_to_fp16(nan))));
      EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(nan))));
    }
  }
}

TEST(DType, RandomFloatsMatchTheReference) {
  DUET_SEEDED_RNG(rng);
  for (int i = 0; i < 300000; ++i) {
    const float any = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    expect_fp16(any);
    expect_bf16(any);
    // Concentrate on fp16's range, subnormals included (exponents 2^-27 .. 2^17).
    const uint32_t exponent = 100 + static_cast<uint32_t>(rng() % 45);
    const float near = std::bit_cast<float>(static_cast<uint32_t>(rng() & 0x807fffffu) | (exponent << 23));
    expect_fp16(near);
    expect_bf16(near);
    expect_bf16(test::random_float(rng));
    if (HasFailure()) return;
  }
}

TEST(DType, SpanConversionsMatchScalarOnes) {
  DUET_SEEDED_RNG(rng);
  std::vector<float> values(1000 + rng() % 1000);
  for (auto& v : values) v = test::random_float(rng);
  for (DType d : {DType::BF16, DType::F16, DType::F32}) {
    std::vector<std::byte> bytes(values.size() * dtype_bits(d) / 8);
    convert_from_f32(d, values, bytes);
    std::vector<float> back(values.size());
    convert_to_f32(d, bytes, back);
    for (size_t i = 0; i < values.size(); ++i) {
      const float expected = d == DType::BF16  ? bf16_to_float(float_to_bf16(values[i]))
                             : d == DType::F16 ? fp16_to_float(float_to_fp16(values[i]))
                                               : values[i];
      if (std::isnan(expected)) {
        EXPECT_TRUE(std::isnan(back[i]));
      } else {
        EXPECT_EQ(back[i], expected) << i;
      }
    }
  }
}

}  // namespace
}  // namespace duet::model
