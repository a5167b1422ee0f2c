// zstd input through libzstd's streaming decompressor (handles several frames).
#include "data/byte_source.hpp"
#include "util/error.hpp"

#ifdef DUET_HAVE_ZSTD
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include <zstd.h>
#endif

namespace duet::data {

#ifdef DUET_HAVE_ZSTD
namespace {

class ZstdSource final : public ByteSource {
 public:
  ZstdSource(std::FILE* file, std::filesystem::path path)
      : file_(file), path_(std::move(path)), ctx_(ZSTD_createDCtx()), in_buf_(ZSTD_DStreamInSize()) {
    if (!ctx_) fail("{}: out of memory for the zstd decoder", path_.string());
  }
  ~ZstdSource() override {
    ZSTD_freeDCtx(ctx_);
    std::fclose(file_);
  }

  size_t read(char* dst, size_t n) override {
    ZSTD_outBuffer out{dst, n, 0};
    while (out.pos == 0) {
      if (in_.pos == in_.size && !pending_output_) {
        size_t got = std::fread(in_buf_.data(), 1, in_buf_.size(), file_);
        if (got == 0) {
          if (std::ferror(file_)) fail("{}: read error: {}", path_.string(), std::strerror(errno));
          // A frame still open at the end of the input means the file was cut short.
          if (frame_open_)
            fail("{}: truncated zstd data (the last frame is incomplete); re-create the file (zstd -t checks it)",
                 path_.string());
          return 0;
        }
        in_ = ZSTD_inBuffer{in_buf_.data(), got, 0};
      }
      size_t ret = ZSTD_decompressStream(ctx_, &out, &in_);
      if (ZSTD_isError(ret))
        fail("{}: corrupt zstd data ({}); re-create the file (zstd -t checks it)", path_.string(),
             ZSTD_getErrorName(ret));
      frame_open_ = ret != 0;
      // A full output buffer may leave decoded bytes inside the decoder: drain
      // them before asking the file for more input.
      pending_output_ = out.pos == out.size;
    }
    return out.pos;
  }
  std::string_view compression() const override { return "zstd"; }

 private:
  std::FILE* file_;
  std::filesystem::path path_;
  ZSTD_DCtx* ctx_;
  std::vector<char> in_buf_;
  ZSTD_inBuffer in_{nullptr, 0, 0};
  bool frame_open_ = false;
  bool pending_output_ = false;
};

}  // namespace

std::unique_ptr<ByteSource> open_zstd_source(const std::filesystem::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("{}: cannot open: {}", path.string(), std::strerror(errno));
  return std::make_unique<ZstdSource>(f, path);
}
#else
std::unique_ptr<ByteSource> open_zstd_source(const std::filesystem::path& path) {
  fail("{}: is zstd-compressed but this duet was built without libzstd; decompress it (zstd -d) or rebuild with libzstd-dev",
       path.string());
}
#endif

}  // namespace duet::data
