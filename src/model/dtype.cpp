#include "model/dtype.hpp"

#include <array>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstring>

namespace duet::model {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; duet reads it in place");

namespace {

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  unsigned bits;
};

constexpr std::array<DTypeInfo, 20> kDTypes{{
    {DType::BOOL, "BOOL", 8},       {DType::U8, "U8", 8},
    {DType::I8, "I8", 8},           {DType::F8_E5M2, "F8_E5M2", 8},
    {DType::F8_E4M3, "F8_E4M3", 8}, {DType::F8_E8M0, "F8_E8M0", 8},
    {DType::I16, "I16", 16},        {DType::U16, "U16", 16},
    {DType::F16, "F16", 16},        {DType::BF16, "BF16", 16},
    {DType::I32, "I32", 32},        {DType::U32, "U32", 32},
    {DType::F32, "F32", 32},        {DType::F64, "F64", 64},
    {DType::I64, "I64", 64},        {DType::U64, "U64", 64},
    {DType::C64, "C64", 64},        {DType::F4, "F4", 4},
    {DType::F6_E2M3, "F6_E2M3", 6}, {DType::F6_E3M2, "F6_E3M2", 6},
}};

const DTypeInfo& info(DType dtype) {
  for (const auto& i : kDTypes)
    if (i.dtype == dtype) return i;
  assert(false && "every DType has an entry");
  return kDTypes[0];
}

template <typename T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& i : kDTypes)
    if (i.name == name) return i.dtype;
  return std::nullopt;
}

std::string_view dtype_name(DType dtype) { return info(dtype).name; }
unsigned dtype_bits(DType dtype) { return info(dtype).bits; }

bool is_float_dtype(DType dtype) {
  return dtype == DType::BF16 || dtype == DType::F16 || dtype == DType::F32;
}

uint16_t float_to_bf16(float value) {
  const uint32_t f = std::bit_cast<uint32_t>(value);
  // NaN: truncating could clear every mantissa bit (giving Inf); set the quiet bit.
  if ((f & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((f >> 16) | 0x0040u);
  // Adding 0x7fff plus the lowest kept bit rounds to nearest even; a carry into
  // the exponent is the correct result (up to Inf).
  return static_cast<uint16_t>((f + 0x7fffu + ((f >> 16) & 1u)) >> 16);
}

float bf16_to_float(uint16_t bits) { return std::bit_cast<float>(uint32_t{bits} << 16); }

uint16_t float_to_fp16(float value) {
  const uint32_t f = std::bit_cast<uint32_t>(value);
  const auto sign = static_cast<uint16_t>((f >> 16) & 0x8000u);
  const uint32_t a = f & 0x7fffffffu;
  if (a > 0x7f800000u)  // NaN: quiet it, keep the top payload bits
    return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  if (a >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 (halfway past 65504) -> Inf
  if (a < 0x38800000u) {                         // below 2^-14: fp16 subnormal or zero
    if (a <= 0x33000000u) return sign;           // <= 2^-25 (a tie at 2^-25 goes to even 0)
    // a = mant * 2^(exp - 150); the result counts units of 2^-24.
    const uint32_t exp = a >> 23;
    const uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exp;  // 14..24
    uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;  // may carry into the smallest normal
    return static_cast<uint16_t>(sign | q);
  }
  // Normal: rebias the exponent (127 -> 15) and round 23 mantissa bits to 10.
  uint32_t q = (a >> 13) - ((127u - 15u) << 10);
  const uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) ++q;
  return static_cast<uint16_t>(sign | q);
}

float fp16_to_float(uint16_t bits) {
  const uint32_t sign = uint32_t{bits & 0x8000u} << 16;
  const uint32_t exp = (bits >> 10) & 0x1fu;
  const uint32_t mant = bits & 0x3ffu;
  if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {  // zero or subnormal: mant * 2^-24 is exact in fp32
    const float magnitude = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
}

void convert_to_f32(DType dtype, std::span<const std::byte> bytes, std::span<float> out) {
  const std::byte* p = bytes.data();
  switch (dtype) {
    case DType::F32:
      assert(bytes.size() == out.size() * 4);
      if (!bytes.empty()) std::memcpy(out.data(), p, bytes.size());  // an empty tensor's span may be null (fuzzing)
      return;
    case DType::BF16:
      assert(bytes.size() == out.size() * 2);
      for (size_t i = 0; i < out.size(); ++i) out[i] = bf16_to_float(load<uint16_t>(p + 2 * i));
      return;
    case DType::F16:
      assert(bytes.size() == out.size() * 2);
      for (size_t i = 0; i < out.size(); ++i) out[i] = fp16_to_float(load<uint16_t>(p + 2 * i));
      return;
    default:
      assert(false && "caller checks is_float_dtype");
  }
}

void convert_from_f32(DType dtype, std::span<const float> values, std::span<std::byte> out) {
  std::byte* p = out.data();
  switch (dtype) {
    case DType::F32:
      assert(out.size() == values.size() * 4);
      std::memcpy(p, values.data(), out.size());
      return;
    case DType::BF16:
      assert(out.size() == values.size() * 2);
      for (size_t i = 0; i < values.size(); ++i) {
        const uint16_t b = float_to_bf16(values[i]);
        std::memcpy(p + 2 * i, &b, 2);
      }
      return;
    case DType::F16:
      assert(out.size() == values.size() * 2);
      for (size_t i = 0; i < values.size(); ++i) {
        const uint16_t b = float_to_fp16(values[i]);
        std::memcpy(p + 2 * i, &b, 2);
      }
      return;
    default:
      assert(false && "caller checks is_float_dtype");
  }
}

}  // namespace duet::model
