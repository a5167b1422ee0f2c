#pragma once
// The safetensors format: an 8-byte little-endian header length N, N bytes of
// JSON ({name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}), then
// the tensors' bytes. The reader maps the file and validates the whole header
// up front (so later reads cannot go out of bounds); the writer produces files
// that transformers and the safetensors library load.
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/dtype.hpp"
#include "model/mapped_file.hpp"

namespace duet::model {

using Shape = std::vector<int64_t>;

// "[4096, 128]" for error messages.
std::string format_shape(const Shape& shape);
int64_t shape_numel(const Shape& shape);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  size_t begin = 0;  // byte range inside the data section (after the header)
  size_t end = 0;
  int64_t numel() const { return shape_numel(shape); }
};

class SafetensorsFile {
 public:
  // Maps and validates `path`; every problem is a duet::Error naming the file
  // (and the tensor, where one is at fault).
  explicit SafetensorsFile(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_.path(); }
  // Tensors sorted by name.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // nullptr when absent.
  const TensorInfo* find(std::string_view name) const;
  // The tensor's raw little-endian bytes.
  std::span<const std::byte> bytes(const TensorInfo& tensor) const;
  // Converts the tensor to fp32 into `out` (out.size() must be its element
  // count); only BF16, F16 and F32 tensors can be read.
  void load_f32(const TensorInfo& tensor, std::span<float> out) const;

 private:
  MappedFile file_;
  std::span<const std::byte> data_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// One tensor to write: values in row-major order, values.size() == numel(shape).
struct TensorData {
  std::string name;
  Shape shape;
  std::span<const float> values;
};

// Writes `tensors` (in the given order) converted to `dtype` (BF16, F16 or F32)
// to `path`, atomically: a temporary file in the same folder is written,
// flushed and renamed over `path`. The metadata always has "format": "pt"
// (transformers requires it) unless the caller sets "format" itself.
void write_safetensors(const std::filesystem::path& path, std::span<const TensorData> tensors,
                       DType dtype, const std::map<std::string, std::string>& metadata = {});

}  // namespace duet::model
