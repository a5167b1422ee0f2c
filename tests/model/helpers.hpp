#pragma once
#include "common/seeds.hpp"
// Shared test utilities: a temporary folder, seeded random generators, raw
// file writing for hand-made (possibly corrupt) safetensors files.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace duet::model::test {

namespace fs = std::filesystem;

// A fresh folder under the system temp dir, removed with its contents.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("duet-model-test-" + std::to_string(rd()) + "-" +
                                         std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// Fresh, replayable seeds (DUET_TEST_SEED) and DUET_SEEDED_RNG: common/seeds.hpp.
using ::duet::test::fresh_seed;

inline std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file from a header text and data bytes, with the 8-byte
// little-endian length prefix (or an explicit, possibly wrong, length).
inline std::string safetensors_bytes(const std::string& header, const std::string& data,
                                     std::optional<uint64_t> length = std::nullopt) {
  const uint64_t n = length.value_or(header.size());
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

inline uint64_t header_length(const std::string& file) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t{static_cast<unsigned char>(file[i])} << (8 * i);
  return n;
}

// Random float: mostly normal values of varied magnitude, some special values.
inline float random_float(std::mt19937_64& rng) {
  std::uniform_int_distribution<int> kind(0, 19);
  switch (kind(rng)) {
    case 0: return std::bit_cast<float>(static_cast<uint32_t>(rng()));  // any bit pattern
    case 1: return std::numeric_limits<float>::quiet_NaN();
    case 2: return (rng() & 1 ? -1.f : 1.f) * std::numeric_limits<float>::infinity();
    case 3: return std::bit_cast<float>(static_cast<uint32_t>(rng() % 0x800000));  // subnormal
    case 4: return 0.0f;
    default: {
      std::uniform_real_distribution<float> mantissa(-2.f, 2.f);
      std::uniform_int_distribution<int> exponent(-30, 20);
      return std::ldexp(mantissa(rng), exponent(rng));
    }
  }
}

}  // namespace duet::model::test
