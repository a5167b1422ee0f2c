#include "model/checkpoint.hpp"


#include <nlohmann/json.hpp>

#include "util/error.hpp"
#include "util/read_file.hpp"

namespace duet::model {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json read_index(const fs::path& path) {
  const auto text = read_file(path);
  if (!text)
    fail("{}: cannot open the shard index; check that the file exists and is readable",
         path.string());
  json index;
  try {
    index = json::parse(*text);
  } catch (const json::exception& e) {
    fail("{}: not valid JSON ({}); fix or regenerate the shard index", path.string(), e.what());
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object() ||
      index["weight_map"].empty())
    fail("{}: no \"weight_map\" object mapping tensor names to shard files; this is not a "
         "safetensors shard index",
         path.string());
  return index;
}

// Shards live next to the index; refusing paths keeps a bad index from reading
// arbitrary files.
void check_shard_name(const fs::path& index, const std::string& tensor, const std::string& shard) {
  if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
    fail("{}: tensor '{}' maps to '{}', which is not a file name in the index's folder", index.string(),
         tensor, shard);
}

}  // namespace

Checkpoint Checkpoint::open(const fs::path& path) {
  Checkpoint ckpt;
  fs::path target = path;
  if (fs::is_directory(path)) {
    if (fs::exists(path / "model.safetensors.index.json"))
      target = path / "model.safetensors.index.json";
    else if (fs::exists(path / "model.safetensors"))
      target = path / "model.safetensors";
    else
      fail("{}: no model.safetensors or model.safetensors.index.json in this folder; point to a "
           "folder saved by save_pretrained or to a .safetensors file",
           path.string());
  }
  ckpt.path_ = target;

  if (target.extension() != ".json") {
    ckpt.files_.push_back(std::make_unique<SafetensorsFile>(target));
    for (const auto& t : ckpt.files_.back()->tensors())
      ckpt.tensors_.emplace(t.name, Entry{ckpt.files_.back().get(), &t});
    return ckpt;
  }

  const json index = read_index(target);
  std::map<std::string, const SafetensorsFile*> shards;
  for (const auto& [tensor, shard_json] : index["weight_map"].items()) {
    if (!shard_json.is_string())
      fail("{}: tensor '{}' maps to a non-string shard name", target.string(), tensor);
    const auto shard = shard_json.get<std::string>();
    check_shard_name(target, tensor, shard);
    auto it = shards.find(shard);
    if (it == shards.end()) {
      ckpt.files_.push_back(with_context(target.string(), [&] {
        return std::make_unique<SafetensorsFile>(target.parent_path() / shard);
      }));
      it = shards.emplace(shard, ckpt.files_.back().get()).first;
    }
    const TensorInfo* info = it->second->find(tensor);
    if (info == nullptr)
      fail("{}: the index maps tensor '{}' to {}, which has no such tensor; regenerate the index "
           "or re-save the model",
           target.string(), tensor, shard);
    ckpt.tensors_.emplace(tensor, Entry{it->second, info});
  }
  // Tensors present in a shard but absent from weight_map are ignored, as transformers does.
  return ckpt;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, entry] : tensors_) out.push_back(name);
  return out;
}

const TensorInfo* Checkpoint::find(std::string_view name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second.info;
}

const TensorInfo& Checkpoint::tensor(std::string_view name) const {
  const TensorInfo* info = find(name);
  if (info == nullptr)
    fail("{}: no tensor named '{}' in this checkpoint", path_.string(), name);
  return *info;
}

const SafetensorsFile& Checkpoint::file_of(std::string_view name) const {
  tensor(name);
  return *tensors_.find(name)->second.file;
}

std::span<const std::byte> Checkpoint::bytes(std::string_view name) const {
  return file_of(name).bytes(tensor(name));
}

void Checkpoint::load_f32(std::string_view name, std::span<float> out) const {
  file_of(name).load_f32(tensor(name), out);
}

}  // namespace duet::model
