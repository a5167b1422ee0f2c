// gzip input through zlib's gz* API (handles concatenated members).
#include "data/byte_source.hpp"
#include "util/error.hpp"

#ifdef DUET_HAVE_ZLIB
#include <climits>
#include <zlib.h>
#endif

namespace duet::data {

#ifdef DUET_HAVE_ZLIB
namespace {

class GzipSource final : public ByteSource {
 public:
  GzipSource(gzFile file, std::filesystem::path path) : file_(file), path_(std::move(path)) {
    gzbuffer(file_, 1 << 17);
  }
  ~GzipSource() override { gzclose(file_); }
  size_t read(char* dst, size_t n) override {
    int got = gzread(file_, dst, static_cast<unsigned>(std::min<size_t>(n, INT_MAX)));
    int code = Z_OK;
    const char* why = gzerror(file_, &code);
    // A cut-off stream ends reads with Z_BUF_ERROR, not a negative count.
    if (got < 0 || (got == 0 && code != Z_OK))
      fail("{}: corrupt or truncated gzip data ({}); re-create the file (gzip -t checks it)",
           path_.string(), why && *why ? why : "unknown zlib error");
    return static_cast<size_t>(got);
  }
  std::string_view compression() const override { return "gzip"; }

 private:
  gzFile file_;
  std::filesystem::path path_;
};

}  // namespace

std::unique_ptr<ByteSource> open_gzip_source(const std::filesystem::path& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) fail("{}: cannot open as gzip", path.string());
  return std::make_unique<GzipSource>(f, path);
}
#else
std::unique_ptr<ByteSource> open_gzip_source(const std::filesystem::path& path) {
  fail("{}: is gzip-compressed but this duet was built without zlib; decompress it (gunzip) or rebuild with zlib1g-dev",
       path.string());
}
#endif

}  // namespace duet::data
