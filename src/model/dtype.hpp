#pragma once
// Element types of checkpoint tensors and the float conversions duet needs.
// Every safetensors dtype is known (so offsets of any file can be validated),
// but only BF16, F16 and F32 can be converted to fp32 for use.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace duet::model {

enum class DType {
  BOOL, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, I16, U16, F16, BF16,
  I32, U32, F32, F64, I64, U64, C64, F4, F6_E2M3, F6_E3M2,
};

// The safetensors spelling ("BF16"); nullopt for an unknown name.
std::optional<DType> parse_dtype(std::string_view name);
std::string_view dtype_name(DType dtype);
// Bits per element (sub-byte types exist: F4 and the F6 formats).
unsigned dtype_bits(DType dtype);
// True for the three types duet converts to fp32.
bool is_float_dtype(DType dtype);

// bf16 and fp16 bit patterns <-> fp32. The fp32 -> 16-bit conversions round to
// nearest, ties to even; NaN stays NaN (quieted, sign kept); overflow gives Inf.
uint16_t float_to_bf16(float value);
float bf16_to_float(uint16_t bits);
uint16_t float_to_fp16(float value);
float fp16_to_float(uint16_t bits);

// Converts raw little-endian elements of `dtype` (BF16, F16 or F32 only) to fp32.
// bytes.size() must equal out.size() * element size (checked by the caller).
void convert_to_f32(DType dtype, std::span<const std::byte> bytes, std::span<float> out);
// Converts fp32 values to `dtype` (BF16, F16 or F32) into `out`.
void convert_from_f32(DType dtype, std::span<const float> values, std::span<std::byte> out);

}  // namespace duet::model
