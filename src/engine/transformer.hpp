#pragma once
// The Llama-family decoder (Llama 2/3, Qwen2, Mistral) over a token-forest
// batch, forward and backward written out layer by layer on the backend ops —
// no autograd. The forward returns log-probs only at the target rows; the
// backward takes d(loss)/d(logp) per target and accumulates parameter
// gradients. Activations live in a Workspace sized once per micro-batch shape.
#include <span>
#include <vector>

#include "engine/batch.hpp"
#include "engine/lora.hpp"
#include "engine/parameters.hpp"
#include "model/config.hpp"

namespace duet::engine {

// Saved activations of one forward pass, reused across steps: grown to the
// largest batch seen, never shrunk (no allocation in the steady state).
template <typename T>
struct Workspace {
  struct Layer {
    std::vector<T> x, n1, rstd1, q, k, v, o, lse, h, n2, rstd2, gate, up, act;
  };
  std::vector<Layer> layers;
  std::vector<T> x_final, n_final, rstd_final, target_lse, target_logp;
  std::vector<T> target_logit_sum;  // sum_v z_v per target (TRL's logits/* metrics)
  // Backward scratch.
  std::vector<T> dx, dh, dn, dtmp, dq, dk, dv, d_o, dgate, dup, dact;
  std::vector<T> lora_scratch;  // one adapted layer at a time (backend/lora.hpp)

  void reserve(const model::ModelConfig& c, int64_t n_tokens, int64_t n_targets);
};

template <typename T>
class Transformer {
 public:
  explicit Transformer(model::ModelConfig config);

  const model::ModelConfig& config() const { return config_; }

  // Log-prob of every target of `batch`, in target order (also kept in
  // ws.target_logp for the backward); ws.target_logit_sum gets sum_v z_v per target.
  // With `lora`, its adapter adds to the adapted layers' outputs.
  std::span<const T> forward(const Batch& batch, const ParameterSet<T>& params, Workspace<T>& ws,
                             const LoraPass<T>* lora = nullptr) const;

  // Accumulates into `grads` the gradient of sum_t d_logp[t] * logp[t], using
  // the activations of the last forward of `batch` in `ws`.
  void backward(const Batch& batch, const ParameterSet<T>& params, std::span<const T> d_logp, Workspace<T>& ws,
                ParameterSet<T>& grads) const;
  // The same with the base weights frozen: only the adapter's gradients
  // (lora.grads) accumulate; `lora` must be the forward's.
  void backward(const Batch& batch, const ParameterSet<T>& params, std::span<const T> d_logp, Workspace<T>& ws,
                const LoraPass<T>& lora) const;

 private:
  void backward_pass(const Batch& batch, const ParameterSet<T>& params, std::span<const T> d_logp, Workspace<T>& ws,
                     ParameterSet<T>* grads, const LoraPass<T>* lora) const;

  model::ModelConfig config_;
  std::vector<float> inv_freq_;
};

}  // namespace duet::engine
