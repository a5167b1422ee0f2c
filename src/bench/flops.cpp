#include "bench/flops.hpp"

namespace duet::bench {

int64_t matrix_parameters(const model::ModelConfig& c) {
  const int64_t d = c.hidden_size, q = c.q_size(), kv = c.kv_size(), f = c.intermediate_size;
  return c.num_hidden_layers * (d * (q + 2 * kv) + q * d + 3 * d * f);
}

int64_t visible_pairs(const layout::Row& row, int64_t window) {
  int64_t pairs = 0;
  for (int32_t j = 0; j < row.used; ++j) {
    const int32_t end = std::min(row.visible_until[static_cast<size_t>(j)], row.used);
    if (window <= 0) {
      pairs += end - j;
      continue;
    }
    for (int32_t i = j; i < end; ++i)  // positions grow along a root path, so this stops early
      if (int64_t{row.position[static_cast<size_t>(i)]} - row.position[static_cast<size_t>(j)] < window) ++pairs;
  }
  return pairs;
}

double step_flops(const model::ModelConfig& c, const StepWork& w, bool with_reference, bool with_backward,
                  Trained trained) {
  const double n = static_cast<double>(matrix_parameters(c));
  const double dv = static_cast<double>(c.hidden_size) * static_cast<double>(c.vocab_size);
  const double attn = 4.0 * static_cast<double>(c.head_dim * c.num_attention_heads * c.num_hidden_layers) *
                      static_cast<double>(w.visible_pairs);
  const double forward = 2.0 * n * w.real_tokens + 2.0 * dv * w.targets + attn;
  const double grads = trained.frozen_base ? 2.0 : 4.0;  // input gradients, and weight gradients unless frozen
  const double backward = grads * n * w.real_tokens + grads * dv * w.targets + 2.5 * attn;
  const double adapter = static_cast<double>(trained.adapter_parameters) * static_cast<double>(w.real_tokens);
  return forward + 2.0 * adapter + (with_backward ? backward + 4.0 * adapter : 0.0) + (with_reference ? forward : 0.0);
}

}  // namespace duet::bench
