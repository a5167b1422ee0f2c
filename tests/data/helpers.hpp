#pragma once
// Shared helpers for the data tests: fresh seeds, temporary files, random text.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/seeds.hpp"
#include "util/utf8.hpp"

namespace duet::data::testing {

using ::duet::test::fresh_seed;  // DUET_TEST_SEED=<n> replays a run
inline std::string seed_trace(uint64_t seed) { return "seed " + std::to_string(seed); }

inline int64_t uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {  // inclusive
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

// A folder removed with everything in it when the object goes away.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("duet_data_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Random valid UTF-8 of 1..max_chars code points: ASCII (spaces and newlines
// included), Latin-1, CJK, emoji, and Unicode whitespace.
inline std::string random_text(std::mt19937_64& rng, int64_t max_chars, bool allow_empty = false) {
  static const char32_t pool[] = {U'a', U'b', U'Z', U'0', U' ', U' ', U'\n', U'\t', U'.', U'"', U'\\', U'<', U'|',
                                  U'é', U'ß', U'ñ', U'日', U'本', U'語', U'🙂', U'🤷', U'\u00A0', U'\u3000', U'\u2028'};
  const int64_t n = uniform(rng, allow_empty ? 0 : 1, max_chars);
  std::string s;
  for (int64_t i = 0; i < n; ++i) utf8::append(s, pool[uniform(rng, 0, std::size(pool) - 1)]);
  return s;
}

}  // namespace duet::data::testing
