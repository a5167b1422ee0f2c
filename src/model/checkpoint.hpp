#pragma once
// A model checkpoint: one model.safetensors, or shards listed by a
// model.safetensors.index.json ({"weight_map": {tensor: shard file}}). All
// files are mapped and validated when opened.
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/safetensors.hpp"

namespace duet::model {

class Checkpoint {
 public:
  // `path` is a model folder (model.safetensors.index.json is preferred over
  // model.safetensors there), a .safetensors file, or an index .json file.
  static Checkpoint open(const std::filesystem::path& path);

  // What `open` resolved to: the index file or the single .safetensors file.
  const std::filesystem::path& path() const { return path_; }
  // All tensor names, sorted.
  std::vector<std::string> names() const;
  // nullptr when absent.
  const TensorInfo* find(std::string_view name) const;
  // duet::Error naming the checkpoint when absent.
  const TensorInfo& tensor(std::string_view name) const;
  // The file holding `name` (which must exist).
  const SafetensorsFile& file_of(std::string_view name) const;
  std::span<const std::byte> bytes(std::string_view name) const;
  // Converts the tensor to fp32 (see SafetensorsFile::load_f32).
  void load_f32(std::string_view name, std::span<float> out) const;

 private:
  struct Entry {
    const SafetensorsFile* file;
    const TensorInfo* info;
  };
  std::filesystem::path path_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, Entry, std::less<>> tensors_;
};

}  // namespace duet::model
