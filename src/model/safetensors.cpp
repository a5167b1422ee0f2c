#include "model/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "util/error.hpp"

namespace duet::model {

namespace {

using nlohmann::json;

// Same cap as the reference implementation: a larger header is corruption.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Element counts above this cannot be real and would overflow byte arithmetic.
constexpr uint64_t kMaxElements = uint64_t{1} << 56;

uint64_t read_u64_le(const std::byte* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// A non-negative JSON integer, or nullopt.
std::optional<uint64_t> as_index(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

TensorInfo parse_entry(const std::string& file, const std::string& name, const json& entry,
                       size_t data_size) {
  if (name.empty()) fail("{}: header has a tensor with an empty name; the file is corrupt", file);
  if (!entry.is_object())
    fail("{}: tensor '{}': header entry is not an object; the file is corrupt", file, name);
  TensorInfo t;
  t.name = name;

  const auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end() || !dtype_it->is_string())
    fail("{}: tensor '{}': missing or non-string \"dtype\"; the file is corrupt", file, name);
  const auto dtype = parse_dtype(dtype_it->get<std::string>());
  if (!dtype)
    fail("{}: tensor '{}': unknown dtype '{}'; duet reads BF16, F16 and F32 tensors", file, name,
         dtype_it->get<std::string>());
  t.dtype = *dtype;

  const auto shape_it = entry.find("shape");
  if (shape_it == entry.end() || !shape_it->is_array())
    fail("{}: tensor '{}': missing or non-array \"shape\"; the file is corrupt", file, name);
  uint64_t numel = 1;
  for (const auto& dim : *shape_it) {
    const auto d = as_index(dim);
    if (!d) fail("{}: tensor '{}': shape {} has a dimension that is not a non-negative integer",
                 file, name, shape_it->dump());
    if (*d > kMaxElements || (*d != 0 && numel > kMaxElements / *d))
      fail("{}: tensor '{}': shape {} is impossibly large; the file is corrupt", file, name,
           shape_it->dump());
    numel *= *d;
    t.shape.push_back(static_cast<int64_t>(*d));
  }

  const auto off_it = entry.find("data_offsets");
  if (off_it == entry.end() || !off_it->is_array() || off_it->size() != 2 ||
      !as_index((*off_it)[0]) || !as_index((*off_it)[1]))
    fail("{}: tensor '{}': \"data_offsets\" must be two non-negative integers; the file is corrupt",
         file, name);
  const uint64_t begin = *as_index((*off_it)[0]);
  const uint64_t end = *as_index((*off_it)[1]);
  if (begin > end)
    fail("{}: tensor '{}': data_offsets [{}, {}] end before they begin; the file is corrupt", file,
         name, begin, end);
  if (end > data_size)
    fail("{}: tensor '{}': data_offsets [{}, {}] run past the end of the data ({} bytes); the file "
         "is truncated or corrupt",
         file, name, begin, end, data_size);
  const uint64_t bits = numel * dtype_bits(t.dtype);
  if (bits % 8 != 0 || end - begin != bits / 8)
    fail("{}: tensor '{}': data_offsets [{}, {}] hold {} bytes but {} {} needs {}; the file is "
         "corrupt",
         file, name, begin, end, end - begin, dtype_name(t.dtype), format_shape(t.shape),
         bits % 8 == 0 ? fmt::format("{} bytes", bits / 8) : fmt::format("{} bits", bits));
  t.begin = static_cast<size_t>(begin);
  t.end = static_cast<size_t>(end);
  return t;
}

// The data section must be covered exactly: no overlaps, gaps or trailing bytes
// (as the reference implementation requires).
void check_coverage(const std::string& file, std::vector<TensorInfo> tensors, size_t data_size) {
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  size_t covered = 0;
  const TensorInfo* previous = nullptr;
  for (const auto& t : tensors) {
    if (t.begin < covered)
      fail("{}: tensors '{}' and '{}' overlap (bytes {} to {}); the file is corrupt", file,
           previous->name, t.name, t.begin, covered);
    if (t.begin > covered)
      fail("{}: {} bytes before tensor '{}' belong to no tensor; the file is corrupt", file,
           t.begin - covered, t.name);
    covered = t.end;
    previous = &t;
  }
  if (covered != data_size)
    fail("{}: the last {} bytes of the file belong to no tensor; the file is corrupt", file,
         data_size - covered);
}

}  // namespace

std::string format_shape(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : file_(path) {
  const std::string name = path.string();
  const auto bytes = file_.bytes();
  if (bytes.size() < 8)
    fail("{}: file is {} bytes, too short for a safetensors header; the file is truncated or not "
         "safetensors",
         name, bytes.size());
  const uint64_t header_len = read_u64_le(bytes.data());
  if (header_len > bytes.size() - 8)
    fail("{}: header length {} runs past the end of the file ({} bytes); the file is truncated or "
         "not safetensors",
         name, header_len, bytes.size());
  if (header_len > kMaxHeaderBytes)
    fail("{}: header length {} exceeds the 100 MB limit; the file is corrupt", name, header_len);
  const auto* text = reinterpret_cast<const char*>(bytes.data() + 8);
  data_ = bytes.subspan(8 + header_len);

  json header;
  try {
    header = json::parse(text, text + header_len);
  } catch (const json::exception& e) {
    fail("{}: header is not valid JSON ({}); the file is truncated or corrupt", name, e.what());
  }
  if (!header.is_object())
    fail("{}: header is not a JSON object; the file is not safetensors", name);

  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail("{}: \"__metadata__\" is not an object; the file is corrupt", name);
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string())
          fail("{}: metadata '{}' is not a string; the file is corrupt", name, mk);
        metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    tensors_.push_back(parse_entry(name, key, value, data_.size()));
  }
  check_coverage(name, tensors_, data_.size());
  // json objects iterate in key order already; sort anyway so find() never depends on it.
  std::sort(tensors_.begin(), tensors_.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  const auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                                   [](const TensorInfo& t, std::string_view n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

std::span<const std::byte> SafetensorsFile::bytes(const TensorInfo& tensor) const {
  return data_.subspan(tensor.begin, tensor.end - tensor.begin);
}

void SafetensorsFile::load_f32(const TensorInfo& tensor, std::span<float> out) const {
  if (!is_float_dtype(tensor.dtype))
    fail("{}: tensor '{}' has dtype {}; duet reads only BF16, F16 and F32 weights; convert the "
         "checkpoint",
         path().string(), tensor.name, dtype_name(tensor.dtype));
  if (static_cast<int64_t>(out.size()) != tensor.numel())
    fail("{}: tensor '{}' {} has {} elements but the destination holds {}", path().string(),
         tensor.name, format_shape(tensor.shape), tensor.numel(), out.size());
  convert_to_f32(tensor.dtype, bytes(tensor), out);
}

}  // namespace duet::model
