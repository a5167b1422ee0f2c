#include "data/byte_source.hpp"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/error.hpp"

namespace duet::data {

namespace {

class PlainSource final : public ByteSource {
 public:
  PlainSource(std::FILE* file, std::filesystem::path path) : file_(file), path_(std::move(path)) {}
  ~PlainSource() override { std::fclose(file_); }
  size_t read(char* dst, size_t n) override {
    size_t got = std::fread(dst, 1, n, file_);
    if (got == 0 && std::ferror(file_)) fail("{}: read error: {}", path_.string(), std::strerror(errno));
    return got;
  }
  std::string_view compression() const override { return "none"; }

 private:
  std::FILE* file_;
  std::filesystem::path path_;
};

enum class Magic { none, gzip, zstd };

Magic sniff(const std::filesystem::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("{}: cannot open: {}", path.string(), std::strerror(errno));
  std::array<unsigned char, 4> b{};
  size_t got = std::fread(b.data(), 1, b.size(), f);
  std::fclose(f);
  if (got >= 2 && b[0] == 0x1f && b[1] == 0x8b) return Magic::gzip;
  if (got >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd) return Magic::zstd;
  return Magic::none;
}

}  // namespace

std::unique_ptr<ByteSource> open_byte_source(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    fail("{}: is a folder; pass a .jsonl, .jsonl.gz or .jsonl.zst file", path.string());
  switch (sniff(path)) {
    case Magic::gzip: return open_gzip_source(path);
    case Magic::zstd: return open_zstd_source(path);
    case Magic::none: break;
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("{}: cannot open: {}", path.string(), std::strerror(errno));
  return std::make_unique<PlainSource>(f, path);
}

}  // namespace duet::data
