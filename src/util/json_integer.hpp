#pragma once
// Integers read from JSON files a user hands to duet. nlohmann's get<int64_t>
// casts whatever number it finds, and a float beyond int64_t's range (1e20,
// 1e300, or an integer literal too long for uint64_t, which nlohmann reads as a
// float) makes that cast undefined behaviour (found by fuzzing).
#include <cmath>
#include <cstdint>
#include <optional>

#include <nlohmann/json.hpp>

namespace duet {

// The integer `v` holds, in int64_t's range, or nullopt (not a number, a
// fraction, out of range). Whole floats count (some tools write 8192.0).
inline std::optional<int64_t> json_integer(const nlohmann::json& v) {
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > uint64_t{INT64_MAX}) return std::nullopt;
    return static_cast<int64_t>(v.get<uint64_t>());
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

}  // namespace duet
