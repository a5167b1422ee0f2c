#pragma once
// Tiny random models of each family and random preference examples, for the
// engine tests. Sizes are chosen so that tiles (64 keys) split segments and
// GQA groups are non-trivial.
#include <random>
#include <string>
#include <vector>

#include "common/seeds.hpp"
#include "engine/parameters.hpp"
#include "layout/example.hpp"
#include "model/config.hpp"

namespace duet::engine::testing {

using ::duet::test::fresh_seed;

inline model::ModelConfig tiny_config(model::Architecture arch) {
  model::ModelConfig c;
  c.architecture = arch;
  c.vocab_size = 97;
  c.hidden_size = 24;
  c.intermediate_size = 40;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 6;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.max_position_embeddings = 4096;
  if (arch == model::Architecture::Qwen2) c.tie_word_embeddings = true;  // and q/k/v biases
  if (arch == model::Architecture::Llama) {
    c.rope_scaling = {model::RopeType::Llama3, 8.0, 1.0, 4.0, 64};
    c.rope_theta = 500000.0;
  }
  return c;
}

// Random weights at a scale where log-probs are far from uniform and
// gradients are not tiny; biases and norms random too, so that every
// parameter's gradient is exercised.
template <typename T>
void randomize(ParameterSet<T>& p, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 0.3);
  for (const auto& s : p.slots()) {
    T* v = p.values().data() + s.offset;
    for (size_t i = 0; i < s.numel; ++i)
      v[i] = static_cast<T>(s.name.ends_with("norm.weight") ? 1.0 + 0.2 * normal(rng) : normal(rng));
  }
}

inline std::vector<layout::TokenizedExample> random_examples(std::mt19937_64& rng, int n, int64_t vocab,
                                                             int max_prompt = 30, int max_response = 20,
                                                             int max_k = 2) {
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<layout::TokenizedExample> out;
  for (int i = 0; i < n; ++i) {
    layout::TokenizedExample e;
    e.index = 100 + i;
    e.prompt.resize(static_cast<size_t>(uni(1, max_prompt)));
    for (auto& t : e.prompt) t = static_cast<layout::TokenId>(uni(0, static_cast<int>(vocab) - 1));
    e.responses.resize(static_cast<size_t>(uni(2, max_k)));
    for (auto& r : e.responses) {
      r.resize(static_cast<size_t>(uni(1, max_response)));
      for (auto& t : r) t = static_cast<layout::TokenId>(uni(0, static_cast<int>(vocab) - 1));
    }
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace duet::engine::testing
