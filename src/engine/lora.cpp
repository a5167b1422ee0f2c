#include "engine/lora.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "backend/linear.hpp"
#include "util/error.hpp"

namespace duet::engine {

namespace {

bool is_attention(const std::string& module) {
  return module == "q_proj" || module == "k_proj" || module == "v_proj" || module == "o_proj";
}

// FNV-1a over the bytes of a vector: a batch's identity for the dropout key.
template <typename V>
uint64_t fnv(uint64_t h, const V& values) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(values.data());
  for (size_t i = 0; i < values.size() * sizeof(values[0]); ++i) h = (h ^ bytes[i]) * 0x100000001b3ull;
  return h;
}

}  // namespace

double LoraConfig::scaling() const {
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

bool LoraConfig::targets(const std::string& module) const {
  return std::find(target_modules.begin(), target_modules.end(), module) != target_modules.end();
}

void LoraConfig::validate() const {
  if (r <= 0) fail("--lora-r must be a positive integer (the adapter's rank), got {}", r);
  if (!(alpha > 0) || !std::isfinite(alpha)) fail("--lora-alpha must be a positive number, got {}", alpha);
  if (!(dropout >= 0 && dropout < 1)) fail("--lora-dropout must be in [0, 1), got {}", dropout);
  if (target_modules.empty()) fail("--lora-target-modules is empty: name at least one of {}, or all-linear",
                                   fmt::format("{}", fmt::join(kLoraModules, ",")));
  parse_target_modules(target_modules);
}

std::vector<std::string> parse_target_modules(const std::vector<std::string>& names) {
  std::vector<std::string> chosen;
  for (const std::string& name : names) {
    if (name == "all-linear") {
      chosen.assign(kLoraModules.begin(), kLoraModules.end());
      continue;
    }
    if (std::find(kLoraModules.begin(), kLoraModules.end(), name) == kLoraModules.end())
      fail("--lora-target-modules: '{}' is not a linear layer of a Llama-family block (one of {}, or all-linear)",
           name, fmt::format("{}", fmt::join(kLoraModules, ",")));
    chosen.push_back(name);
  }
  std::vector<std::string> ordered;
  for (const char* m : kLoraModules)
    if (std::find(chosen.begin(), chosen.end(), m) != chosen.end()) ordered.emplace_back(m);
  return ordered;
}

std::string lora_module_path(int64_t layer, const std::string& module) {
  return fmt::format("model.layers.{}.{}.{}", layer, is_attention(module) ? "self_attn" : "mlp", module);
}

std::string lora_a_name(int64_t layer, const std::string& module) {
  return "base_model.model." + lora_module_path(layer, module) + ".lora_A.weight";
}

std::string lora_b_name(int64_t layer, const std::string& module) {
  return "base_model.model." + lora_module_path(layer, module) + ".lora_B.weight";
}

LinearShape lora_module_shape(const model::ModelConfig& c, const std::string& module) {
  const int64_t d = c.hidden_size, q = c.q_size(), kv = c.kv_size(), f = c.intermediate_size;
  if (module == "q_proj") return {d, q};
  if (module == "k_proj" || module == "v_proj") return {d, kv};
  if (module == "o_proj") return {q, d};
  if (module == "gate_proj" || module == "up_proj") return {d, f};
  if (module == "down_proj") return {f, d};
  fail("internal: '{}' is not a LoRA module", module);
}

std::vector<TensorSlot> layout_adapter(const model::ModelConfig& model, const LoraConfig& lora) {
  for (const auto& [type, layers] : lora.named_layers)
    if (static_cast<int64_t>(layers.size()) != model.num_hidden_layers || *layers.begin() != 0 ||
        *layers.rbegin() != model.num_hidden_layers - 1)
      fail("adapter_config.json: target_modules names {} on layers {} of the model's {}: duet adapts a module type in "
           "every layer or in none",
           type, fmt::format("{}", fmt::join(layers, ",")), model.num_hidden_layers);
  std::vector<TensorSlot> slots;
  size_t offset = 0;
  auto add = [&](std::string name, model::Shape shape) {
    const size_t n = static_cast<size_t>(model::shape_numel(shape));
    slots.push_back({std::move(name), std::move(shape), offset, n, true});
    offset += n;
  };
  for (int64_t l = 0; l < model.num_hidden_layers; ++l)
    for (const char* m : kLoraModules) {
      if (!lora.targets(m)) continue;
      const LinearShape s = lora_module_shape(model, m);
      add(lora_a_name(l, m), {lora.r, s.in});
      add(lora_b_name(l, m), {s.out, lora.r});
    }
  return slots;
}

template <typename T>
void init_adapter(ParameterSet<T>& adapter, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (const TensorSlot& s : adapter.slots()) {
    T* p = adapter.values().data() + s.offset;
    if (s.name.ends_with(".lora_B.weight")) {
      std::fill(p, p + s.numel, T(0));
      continue;
    }
    // kaiming_uniform_(a=sqrt(5)): gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in).
    const double bound = 1.0 / std::sqrt(static_cast<double>(s.shape[1]));
    std::uniform_real_distribution<double> uniform(-bound, bound);
    for (size_t i = 0; i < s.numel; ++i) p[i] = static_cast<T>(uniform(rng));
  }
}

void merge_adapter(const model::ModelConfig& config, ParameterSet<float>& base, const LoraConfig& lora,
                   const ParameterSet<float>& adapter) {
  std::vector<float> a_t, product;
  for (int64_t l = 0; l < config.num_hidden_layers; ++l)
    for (const char* m : kLoraModules) {
      if (!lora.targets(m)) continue;
      const LinearShape shape = lora_module_shape(config, m);
      const float* a = adapter.data(lora_a_name(l, m));
      a_t.resize(static_cast<size_t>(shape.in * lora.r));
      for (int64_t i = 0; i < lora.r; ++i)
        for (int64_t j = 0; j < shape.in; ++j) a_t[static_cast<size_t>(j * lora.r + i)] = a[i * shape.in + j];
      // B A [out, in] as a linear layer: rows of B through the "weight" A^T [in, r].
      product.resize(static_cast<size_t>(shape.out * shape.in));
      backend::LinearParams<float> p;
      p.x = adapter.data(lora_b_name(l, m)), p.weight = a_t.data(), p.y = product.data();
      p.n_rows = shape.out, p.in_features = lora.r, p.out_features = shape.in;
      backend::cpu::linear_forward(p);
      float* w = base.data(lora_module_path(l, m) + ".weight");
      const auto scaling = static_cast<float>(lora.scaling());
      for (size_t i = 0; i < product.size(); ++i) w[i] += scaling * product[i];
    }
}

uint64_t lora_dropout_key(uint64_t seed, int64_t optimizer_step, const Batch& batch) {
  uint64_t h = 0xcbf29ce484222325ull ^ seed;
  h = (h ^ static_cast<uint64_t>(optimizer_step)) * 0x100000001b3ull;
  h = fnv(h, batch.tokens);
  h = fnv(h, batch.positions);
  return fnv(h, batch.visible_until);
}

template void init_adapter<float>(ParameterSet<float>&, uint64_t);
template void init_adapter<double>(ParameterSet<double>&, uint64_t);

}  // namespace duet::engine
