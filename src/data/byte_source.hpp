#pragma once
// A file's bytes, decompressed on the fly: plain, gzip (zlib) or zstd
// (libzstd streaming), recognised by the file's magic bytes, not its name.
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string_view>

namespace duet::data {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Fills up to `n` bytes; returns 0 only at the end. duet::fail on a read
  // error or a truncated/corrupt compressed stream (naming the file).
  virtual size_t read(char* dst, size_t n) = 0;
  virtual std::string_view compression() const = 0;  // "none", "gzip", "zstd"
};

// duet::fail when the file cannot be opened, or it is compressed with a codec
// this build lacks.
std::unique_ptr<ByteSource> open_byte_source(const std::filesystem::path& path);

// The codec-specific openers (file already known to carry their magic).
std::unique_ptr<ByteSource> open_gzip_source(const std::filesystem::path& path);
std::unique_ptr<ByteSource> open_zstd_source(const std::filesystem::path& path);

}  // namespace duet::data
