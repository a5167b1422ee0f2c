#pragma once
// A checkpoint checked against a config: every tensor the model needs is
// present with the right shape and a float dtype, and nothing the model would
// silently ignore is there. Problems surface once, at load time, as one clear
// error instead of a crash or wrong numbers later.
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

#include "model/checkpoint.hpp"
#include "model/config.hpp"
#include "model/tensor_layout.hpp"

namespace duet::model {

class WeightSource {
 public:
  // Throws duet::Error on the first mismatch (naming the tensor, its shape and
  // the expected shape, plus how many other tensors are affected).
  WeightSource(ModelConfig config, Checkpoint checkpoint);
  // config.json and the checkpoint from a folder written by save_pretrained.
  static WeightSource open(const std::filesystem::path& folder);

  const ModelConfig& config() const { return config_; }
  const Checkpoint& checkpoint() const { return checkpoint_; }
  const std::vector<ExpectedTensor>& tensors() const { return expected_; }
  // Storage dtype of an expected tensor (BF16, F16 or F32).
  DType dtype(std::string_view name) const { return checkpoint_.tensor(name).dtype; }
  // Raw bytes of an expected tensor, e.g. to upload bf16 weights unconverted.
  std::span<const std::byte> bytes(std::string_view name) const { return checkpoint_.bytes(name); }
  void load_f32(std::string_view name, std::span<float> out) const {
    checkpoint_.load_f32(name, out);
  }

 private:
  ModelConfig config_;
  Checkpoint checkpoint_;
  std::vector<ExpectedTensor> expected_;
};

}  // namespace duet::model
