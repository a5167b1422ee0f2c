#pragma once
// All trainable tensors of a model in one flat buffer, in transformers' naming
// and order. Gradients and optimizer moments use the same layout, so the
// optimizer, gradient clipping and checkpointing walk one array.
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "model/config.hpp"
#include "model/dtype.hpp"
#include "model/safetensors.hpp"

namespace duet::engine {

struct TensorSlot {
  std::string name;  // as transformers names it
  model::Shape shape;
  size_t offset = 0;  // in elements
  size_t numel = 0;
  bool decay = true;  // AdamW weight decay: off for norms and biases
};

// The slots of a config, in expected_tensors order. Tied embeddings have no
// lm_head slot: the engine reads and accumulates into the embedding.
std::vector<TensorSlot> layout_parameters(const model::ModelConfig& config);

template <typename T>
class ParameterSet {
 public:
  explicit ParameterSet(const model::ModelConfig& config);
  // Any other set of tensors (a LoRA adapter), laid out by the caller.
  explicit ParameterSet(std::vector<TensorSlot> slots);

  const std::vector<TensorSlot>& slots() const { return slots_; }
  const TensorSlot& slot(const std::string& name) const;
  const TensorSlot* find(const std::string& name) const;
  T* data(const std::string& name) { return values_.data() + slot(name).offset; }
  const T* data(const std::string& name) const { return values_.data() + slot(name).offset; }
  std::span<T> values() { return values_; }
  std::span<const T> values() const { return values_; }
  void fill(T value) { std::fill(values_.begin(), values_.end(), value); }

 private:
  std::vector<TensorSlot> slots_;
  std::vector<T> values_;
};

// Loads every slot from a model folder (config + safetensors), converting to T.
template <typename T>
void load_weights(ParameterSet<T>& params, const std::filesystem::path& model_dir);

// Writes the parameters as model.safetensors in `dtype` (atomically).
template <typename T>
void save_weights(const ParameterSet<T>& params, const std::filesystem::path& file, model::DType dtype);

// Fills with N(0, std) for matrices and embeddings, ones for norms, zeros for
// biases (transformers' _init_weights with initializer_range = std).
template <typename T>
void init_random(ParameterSet<T>& params, uint64_t seed, double std);

}  // namespace duet::engine
