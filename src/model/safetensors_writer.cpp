// write_safetensors: see safetensors.hpp.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/safetensors.hpp"
#include "util/error.hpp"

namespace duet::model {

namespace {

using nlohmann::json;

// Owns the temporary file until it is renamed into place; removes it otherwise.
class TempFile {
 public:
  explicit TempFile(const std::filesystem::path& target) : target_(target) {
    const auto folder = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
    path_ = (folder / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
    fd_ = ::mkstemp(path_.data());
    if (fd_ < 0)
      fail("{}: cannot create a temporary file in {} ({}); check that the folder exists and is "
           "writable",
           target.string(), folder.string(), std::strerror(errno));
    ::fchmod(fd_, 0644);  // mkstemp makes it private; checkpoints are shared like any output
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  void write(const void* data, size_t size) {
    const auto* p = static_cast<const char*>(data);
    while (size > 0) {
      const ssize_t n = ::write(fd_, p, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0)
        fail("{}: write failed ({}); check free disk space", target_.string(), std::strerror(errno));
      p += n;
      size -= static_cast<size_t>(n);
    }
  }

  // Flushes to disk and renames over the target, so readers see the old file or the new one.
  void commit() {
    if (::fsync(fd_) != 0 || ::close(std::exchange(fd_, -1)) != 0)
      fail("{}: flushing to disk failed ({})", target_.string(), std::strerror(errno));
    if (::rename(path_.c_str(), target_.c_str()) != 0)
      fail("{}: cannot rename the temporary file into place ({})", target_.string(),
           std::strerror(errno));
    committed_ = true;
  }

 private:
  std::filesystem::path target_;
  std::string path_;
  int fd_ = -1;
  bool committed_ = false;
};

void check_tensors(const std::filesystem::path& path, std::span<const TensorData> tensors) {
  std::set<std::string_view> names;
  for (const auto& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__")
      fail("{}: invalid tensor name '{}'", path.string(), t.name);
    if (!names.insert(t.name).second)
      fail("{}: tensor '{}' is listed twice", path.string(), t.name);
    if (std::any_of(t.shape.begin(), t.shape.end(), [](int64_t d) { return d < 0; }))
      fail("{}: tensor '{}' has a negative dimension in {}", path.string(), t.name,
           format_shape(t.shape));
    if (shape_numel(t.shape) != static_cast<int64_t>(t.values.size()))
      fail("{}: tensor '{}' has shape {} ({} elements) but {} values", path.string(), t.name,
           format_shape(t.shape), shape_numel(t.shape), t.values.size());
  }
}

}  // namespace

void write_safetensors(const std::filesystem::path& path, std::span<const TensorData> tensors,
                       DType dtype, const std::map<std::string, std::string>& metadata) {
  if (!is_float_dtype(dtype))
    fail("{}: cannot write dtype {}; duet writes BF16, F16 or F32", path.string(), dtype_name(dtype));
  check_tensors(path, tensors);
  const size_t element_bytes = dtype_bits(dtype) / 8;

  json header = json::object();
  json meta = json::object();
  meta["format"] = "pt";
  for (const auto& [k, v] : metadata) meta[k] = v;
  header["__metadata__"] = meta;
  size_t offset = 0;
  for (const auto& t : tensors) {
    const size_t size = t.values.size() * element_bytes;
    header[t.name] = {{"dtype", dtype_name(dtype)}, {"shape", t.shape},
                      {"data_offsets", {offset, offset + size}}};
    offset += size;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    fail("{}: cannot encode the header ({}); tensor names and metadata must be valid UTF-8",
         path.string(), e.what());
  }
  // Pad with spaces so the data starts 8-byte aligned, as the format recommends.
  text.append((8 - text.size() % 8) % 8, ' ');

  TempFile out(path);
  const uint64_t header_len = text.size();
  out.write(&header_len, 8);
  out.write(text.data(), text.size());
  constexpr size_t kChunk = size_t{1} << 20;  // bounds the conversion buffer
  std::vector<std::byte> buffer;
  for (const auto& t : tensors) {
    for (size_t i = 0; i < t.values.size(); i += kChunk) {
      const auto part = t.values.subspan(i, std::min(kChunk, t.values.size() - i));
      buffer.resize(part.size() * element_bytes);
      convert_from_f32(dtype, part, buffer);
      out.write(buffer.data(), buffer.size());
    }
  }
  out.commit();
}

}  // namespace duet::model
