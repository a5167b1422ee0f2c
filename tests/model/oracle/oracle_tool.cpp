// Helper for hf_oracle.py, which checks duet's model I/O against transformers
// on the GPU test machine (the only machine with PyTorch):
//   oracle_tool rope <config.json>            -> JSON: duet's config and inv_freq bits
//   oracle_tool dump <model folder> <out.bin>  -> JSON index; fp32 tensor data in out.bin
//   oracle_tool copy <model folder> <dest> <BF16|F16|F32>
//                                             -> config.json + model.safetensors written by duet
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "model/rope.hpp"
#include "model/weight_source.hpp"
#include "util/error.hpp"

using namespace duet::model;
using nlohmann::json;

int main(int argc, char** argv) try {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "rope" && argc == 3) {
    const auto config = load_config(argv[2]);
    json bits = json::array();
    for (float f : rope_inverse_frequencies(config)) {
      uint32_t b;
      std::memcpy(&b, &f, 4);
      bits.push_back(b);
    }
    std::cout << json{{"config", to_json(config)}, {"inv_freq_bits", bits}}.dump() << "\n";
    return 0;
  }
  if (cmd == "dump" && argc == 4) {
    const auto source = WeightSource::open(argv[2]);
    std::ofstream out(argv[3], std::ios::binary);
    json index = json::array();
    size_t offset = 0;
    std::vector<float> values;
    for (const auto& t : source.tensors()) {
      values.resize(static_cast<size_t>(shape_numel(t.shape)));
      source.load_f32(t.name, values);
      out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * 4));
      index.push_back({{"name", t.name}, {"shape", t.shape}, {"offset", offset},
                       {"dtype", dtype_name(source.dtype(t.name))}});
      offset += values.size() * 4;
    }
    std::cout << json{{"config", to_json(source.config())}, {"tensors", index}}.dump() << "\n";
    return 0;
  }
  if (cmd == "copy" && argc == 5) {
    const auto source = WeightSource::open(argv[2]);
    const auto dtype = parse_dtype(argv[4]);
    if (!dtype) duet::fail("unknown dtype {}", argv[4]);
    std::vector<std::vector<float>> storage;
    std::vector<TensorData> tensors;
    for (const auto& t : source.tensors()) {
      storage.emplace_back(static_cast<size_t>(shape_numel(t.shape)));
      source.load_f32(t.name, storage.back());
    }
    for (size_t i = 0; i < storage.size(); ++i)
      tensors.push_back({source.tensors()[i].name, source.tensors()[i].shape, storage[i]});
    const std::filesystem::path dest = argv[3];
    std::filesystem::create_directories(dest);
    write_safetensors(dest / "model.safetensors", tensors, *dtype);
    save_config(source.config(), dest / "config.json");
    return 0;
  }
  std::cerr << "usage: oracle_tool rope CONFIG | dump FOLDER OUT.bin | copy FOLDER DEST DTYPE\n";
  return 2;
} catch (const duet::Error& e) {
  std::cerr << "error: " << e.what() << "\n";
  return 1;
}
