#pragma once
// The Llama-family decoder on the GPU, layer by layer on the CUDA backend ops
// (the same sequence as engine/transformer.cpp on the CPU, with q/k/v and
// gate/up fused into one product each and the residual adds fused into the
// RMSNorms). bf16 activations; fp32 statistics, log-probs and parameter
// gradients; the residual stream's gradient in fp32.
//
// Activations saved for the backward live in one arena carved for the
// largest batch. Each layer keeps what a product or attention made; its two
// norms' outputs and SwiGLU's are rebuilt element-wise before its backward
// (selective recompute, bitwise the same values). With recompute (gradient
// checkpointing) only each layer's input is kept and the rest of a layer is
// recomputed before its backward.
#include <cstdint>
#include <memory>
#include <vector>

#include "backend/attention.hpp"
#include "backend/cuda/gemm.hpp"
#include "engine/cuda/device_batch.hpp"
#include "engine/cuda/device_lora.hpp"
#include "engine/cuda/device_memory.hpp"
#include "engine/cuda/op_timer.hpp"
#include "engine/device_layout.hpp"
#include "model/config.hpp"

namespace duet::engine::cuda {

using backend::cuda::bf16;

// Where the backward accumulates (+=) the parameter gradients: one fp32 buffer
// in the device layout (FlatGradients), or ZeRO-2's buckets (ShardedGradients),
// which stage a layer's gradients between open_layer and close_layer and hand
// them on when it closes.
class GradientSink {
 public:
  virtual ~GradientSink() = default;
  // The fp32 gradient of the tensor at device offset `offset`: a tensor of
  // the open layer, or of the embedding, final norm or LM head.
  virtual float* at(size_t offset) = 0;
  virtual void open_layer(int64_t l, cudaStream_t s) {}
  virtual void close_layer(int64_t l, cudaStream_t s) {}
};

class FlatGradients final : public GradientSink {
 public:
  explicit FlatGradients(float* grads) : grads_(grads) {}
  float* at(size_t offset) override { return grads_ + offset; }

 private:
  float* grads_;
};

// Where a pass reads the bf16 weights: one buffer in the device layout
// (FlatWeights), or ZeRO-3's shards (ShardedWeights), which gather a layer's
// weights by open_layer (and start gathering `next`, the layer the pass
// opens after it) and may reuse its buffer after close_layer.
class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // The tensor at device offset `offset`: of the open layer, or the embedding, final norm or LM head.
  virtual const bf16* at(size_t offset) = 0;
  virtual void open_layer(int64_t l, int64_t next, cudaStream_t s) {}
  virtual void close_layer(int64_t l, cudaStream_t s) {}
  // After a pass (host side): its collectives done (bounded by --nccl-timeout).
  virtual void finish_pass() {}
};

class FlatWeights final : public WeightSource {
 public:
  explicit FlatWeights(const bf16* weights) : weights_(weights) {}
  const bf16* at(size_t offset) override { return weights_ + offset; }

 private:
  const bf16* weights_;
};

class DeviceTransformer {
 public:
  DeviceTransformer(const model::ModelConfig& config, const DeviceLayout& layout, bool recompute);
  ~DeviceTransformer();

  // A LoRA adapter beside the products (before carve); each forward or
  // backward then says whether it is on (a Pass) or off (null: the base).
  void enable_lora(const LoraConfig& lora, const DeviceLayout& adapter_layout);

  // Carves from `arena` (or, with a counting arena, only counts) the
  // activations and scratch for batches of up to max_tokens / max_targets.
  // Construction and a counting carve touch no GPU (memory estimates).
  void carve(Arena& arena, int64_t max_tokens, int64_t max_targets);

  // Log-prob of every target (device, [n_targets]) given the bf16 weights. Per batch, call prepare() first (the attention plan).
  void prepare(const DeviceBatch& batch, cudaStream_t stream);
  const float* forward(const DeviceBatch& batch, WeightSource& weights, cudaStream_t stream,
                       const DeviceLora::Pass* lora = nullptr);
  // Σ_v z_v per target (device, [n_targets]) of the last forward.
  const float* logit_sums() const { return logit_sum_; }
  // Accumulates into grads (null: the weights are frozen) the gradient of
  // Σ_t batch.d_logp[t] · logp[t], and into the adapter's gradients with
  // `lora`; needs the last forward of this batch, with the same `lora`.
  void backward(const DeviceBatch& batch, WeightSource& weights, GradientSink* grads, cudaStream_t stream,
                const DeviceLora::Pass* lora = nullptr);

  // A data-parallel rank with no row where the others run a forward (or a
  // backward, with `grads`): opens and closes the layers as that pass does,
  // so the weights' gathers and the gradients' reduces (zeros) match theirs.
  void pass_without_rows(WeightSource& weights, GradientSink* grads, bool backward, cudaStream_t stream);

  // The matrix products a forward (and a backward; with weight_grads, one
  // that accumulates the weights' gradients) of n tokens and t targets runs,
  // pointers unset: what the engine tunes before its first step.
  std::vector<backend::cuda::GemmParams> products(int64_t n, int64_t t, bool backward, bool weight_grads) const;

  // Made on first use: a transformer that only counts its carve needs no GPU.
  backend::cuda::Gemm& gemm();
  OpTimer& timer() { return timer_; }

 private:
  struct Layer {  // one layer's activations (n1, n2, act: one buffer shared by all layers)
    bf16 *x, *n1, *qkv, *o, *h, *n2, *gate_up, *act;
    float *rstd1, *rstd2, *lse;
  };
  template <typename P>
  struct LayerParams {  // one layer's tensors in a device-layout buffer
    P in_norm, qkv_w, qkv_b, o_w, o_b, post_norm, gate_up_w, down_w;
  };
  // Layer l's tensors at at(device offset); a tensor the config lacks is null.
  template <typename P, typename At>
  LayerParams<P> layer_params(int64_t l, At&& at) const;
  LayerParams<const bf16*> layer_weights(WeightSource& weights, int64_t l) const;

  void layer_body(const DeviceBatch& b, int64_t l, const LayerParams<const bf16*>& W, const Layer& L,
                  bool with_down, cudaStream_t s);
  // y = RMSNorm(x) · weight, its statistic into rstd (a norm rebuilt for the backward).
  void norm(const bf16* x, const bf16* weight, bf16* y, float* rstd, int64_t n, cudaStream_t s);
  void layer_backward(const DeviceBatch& b, int64_t l, const LayerParams<const bf16*>& W,
                      const LayerParams<float*>& G, const Layer& L, cudaStream_t s);
  // The adapter's share of module m of layer l (nothing without an adapter pass).
  void adapter(LoraModule m, int64_t l, const bf16* x, bf16* y, int64_t ldy, int64_t n, cudaStream_t s);
  void adapter_back(LoraModule m, int64_t l, const bf16* x, const bf16* dy, int64_t ldy, void* dx, bool dx_f32,
                    int64_t n, cudaStream_t s);
  void linear(const bf16* x, const bf16* w, const bf16* bias, bf16* y, int64_t n, int64_t in, int64_t out,
              cudaStream_t s);
  void linear_back(const bf16* x, const bf16* w, const bf16* dy, void* dx, bool dx_f32, float* dw, int64_t n,
                   int64_t in, int64_t out, cudaStream_t s);
  backend::AttentionShape attention_shape(const DeviceBatch& b) const;
  template <typename F>
  void timed(OpKind kind, cudaStream_t s, F&& op) {
    const auto scope = timer_.scope(kind, s);
    op();
  }

  model::ModelConfig c_;
  const DeviceLayout& layout_;
  bool recompute_;
  std::unique_ptr<backend::cuda::Gemm> gemm_;
  OpTimer timer_;
  std::unique_ptr<DeviceLora> lora_;
  const DeviceLora::Pass* pass_ = nullptr;  // of the forward or backward running now
  DeviceBuffer inv_freq_;
  int64_t max_tokens_ = 0, max_targets_ = 0;

  std::vector<Layer> layers_;
  bf16 *x_final_ = nullptr, *n_final_ = nullptr, *branch_ = nullptr;
  float *rstd_final_ = nullptr, *logp_ = nullptr, *target_lse_ = nullptr, *logit_sum_ = nullptr;
  // Backward scratch.
  float *d_res_ = nullptr, *d_norm_ = nullptr, *partials_ = nullptr;
  bf16 *d_res_bf16_ = nullptr, *d_act_ = nullptr, *d_gate_up_ = nullptr, *d_o_ = nullptr, *d_qkv_ = nullptr;
  void *attention_ws_ = nullptr, *lm_head_ws_ = nullptr;
};

// The bytes of the one allocation a batch of up to `tokens` / `targets` needs:
// its device copy (carve_batch) and the transformer's activations and scratch,
// counted by a dry run of the same carving (no GPU needed).
size_t workspace_bytes(DeviceTransformer& model, int64_t tokens, int64_t targets);

}  // namespace duet::engine::cuda
