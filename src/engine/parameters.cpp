#include "engine/parameters.hpp"

#include <random>

#include "model/tensor_layout.hpp"
#include "model/weight_source.hpp"
#include "util/error.hpp"

namespace duet::engine {

namespace {

bool is_norm_or_bias(const std::string& name) {
  return name.ends_with("norm.weight") || name.ends_with(".bias");
}

}  // namespace

std::vector<TensorSlot> layout_parameters(const model::ModelConfig& config) {
  std::vector<TensorSlot> slots;
  size_t offset = 0;
  for (const auto& t : model::expected_tensors(config)) {
    size_t n = static_cast<size_t>(model::shape_numel(t.shape));
    slots.push_back({t.name, t.shape, offset, n, !is_norm_or_bias(t.name)});
    offset += n;
  }
  return slots;
}

template <typename T>
ParameterSet<T>::ParameterSet(const model::ModelConfig& config) : ParameterSet(layout_parameters(config)) {}

template <typename T>
ParameterSet<T>::ParameterSet(std::vector<TensorSlot> slots) : slots_(std::move(slots)) {
  size_t total = slots_.empty() ? 0 : slots_.back().offset + slots_.back().numel;
  values_.assign(total, T(0));
}

template <typename T>
const TensorSlot* ParameterSet<T>::find(const std::string& name) const {
  for (const auto& s : slots_)
    if (s.name == name) return &s;
  return nullptr;
}

template <typename T>
const TensorSlot& ParameterSet<T>::slot(const std::string& name) const {
  const TensorSlot* s = find(name);
  if (!s) fail("internal: no parameter named '{}'", name);
  return *s;
}

template <typename T>
void load_weights(ParameterSet<T>& params, const std::filesystem::path& model_dir) {
  auto source = model::WeightSource::open(model_dir);
  std::vector<float> buffer;
  for (const TensorSlot& s : params.slots()) {
    buffer.resize(s.numel);
    source.load_f32(s.name, buffer);
    std::copy(buffer.begin(), buffer.end(), params.values().begin() + static_cast<ptrdiff_t>(s.offset));
  }
}

template <typename T>
void save_weights(const ParameterSet<T>& params, const std::filesystem::path& file, model::DType dtype) {
  // Convert to fp32 once (the writer converts fp32 to the file's dtype).
  std::vector<float> values(params.values().begin(), params.values().end());
  std::vector<model::TensorData> tensors;
  for (const TensorSlot& s : params.slots())
    tensors.push_back({s.name, s.shape, std::span<const float>(values.data() + s.offset, s.numel)});
  model::write_safetensors(file, tensors, dtype);
}

template <typename T>
void init_random(ParameterSet<T>& params, uint64_t seed, double std) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, std);
  for (const TensorSlot& s : params.slots()) {
    T* p = params.values().data() + s.offset;
    if (s.name.ends_with("norm.weight")) {
      std::fill(p, p + s.numel, T(1));
    } else if (s.name.ends_with(".bias")) {
      std::fill(p, p + s.numel, T(0));
    } else {
      for (size_t i = 0; i < s.numel; ++i) p[i] = static_cast<T>(normal(rng));
    }
  }
}

#define DUET_INSTANTIATE(T)                                                                   \
  template class ParameterSet<T>;                                                             \
  template void load_weights<T>(ParameterSet<T>&, const std::filesystem::path&);              \
  template void save_weights<T>(const ParameterSet<T>&, const std::filesystem::path&, model::DType); \
  template void init_random<T>(ParameterSet<T>&, uint64_t, double);
DUET_INSTANTIATE(float)
DUET_INSTANTIATE(double)
#undef DUET_INSTANTIATE

}  // namespace duet::engine
