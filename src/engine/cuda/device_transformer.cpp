#include "engine/cuda/device_transformer.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "backend/cuda/attention.hpp"
#include "backend/cuda/layers.hpp"
#include "backend/cuda/target_logprobs.hpp"
#include "model/rope.hpp"
#include "util/error.hpp"

namespace duet::engine::cuda {

namespace bc = duet::backend::cuda;
using bc::check;
using bc::DType;

DeviceTransformer::DeviceTransformer(const model::ModelConfig& config, const DeviceLayout& layout, bool recompute)
    : c_(config), layout_(layout), recompute_(recompute) {}

DeviceTransformer::~DeviceTransformer() = default;

bc::Gemm& DeviceTransformer::gemm() {
  if (!gemm_) gemm_ = std::make_unique<bc::Gemm>();
  return *gemm_;
}

void DeviceTransformer::enable_lora(const LoraConfig& lora, const DeviceLayout& adapter_layout) {
  lora_ = std::make_unique<DeviceLora>(c_, lora, adapter_layout);
}

void DeviceTransformer::adapter(LoraModule m, int64_t l, const bf16* x, bf16* y, int64_t ldy, int64_t n,
                                cudaStream_t s) {
  if (!pass_ || !lora_->adapts(m)) return;
  timed(OpKind::matmul, s, [&] { lora_->forward(*pass_, l, m, x, y, ldy, n, gemm(), s); });
}

void DeviceTransformer::adapter_back(LoraModule m, int64_t l, const bf16* x, const bf16* dy, int64_t ldy, void* dx,
                                     bool dx_f32, int64_t n, cudaStream_t s) {
  if (!pass_ || !lora_->adapts(m)) return;
  timed(OpKind::matmul, s, [&] { lora_->backward(*pass_, l, m, x, dy, ldy, dx, dx_f32, n, gemm(), s); });
}

backend::AttentionShape DeviceTransformer::attention_shape(const DeviceBatch& b) const {
  backend::AttentionShape s;
  s.n_tokens = b.n_tokens;
  s.n_q_heads = c_.num_attention_heads;
  s.n_kv_heads = c_.num_key_value_heads;
  s.head_dim = c_.head_dim;
  s.visible_until = b.visible_until;
  s.positions = b.positions;
  s.window = c_.attention_window().value_or(0);
  return s;
}

void DeviceTransformer::carve(Arena& a, int64_t n, int64_t t) {
  if (!a.counts_only() && inv_freq_.bytes() == 0) {
    const auto inv = model::rope_inverse_frequencies(c_);
    inv_freq_.allocate(inv.size() * sizeof(float), "RoPE frequencies");
    check(cudaMemcpy(inv_freq_.as<float>(), inv.data(), inv.size() * sizeof(float), cudaMemcpyHostToDevice),
          "copying RoPE frequencies");
  }
  const int64_t d = c_.hidden_size, q = c_.q_size(), kv = c_.kv_size(), f = c_.intermediate_size;
  const int64_t h = c_.num_attention_heads, qkv = q + 2 * kv;
  // Kept per layer for its backward: what costs a product or attention to
  // rebuild (q|k|v, attention's output and log-sum-exp, gate|up), the
  // residual h and the norms' statistics. The two norms' outputs and SwiGLU's
  // are rebuilt before the layer's backward from x, h and gate|up (one
  // element-wise pass each, bitwise the forward's values: docs/memory.md),
  // so one buffer of each serves every layer. With recompute only x is kept
  // per layer and one set of everything serves all.
  auto carve_kept = [&](Layer& L) {
    L.qkv = a.take<bf16>(n * qkv), L.o = a.take<bf16>(n * q), L.h = a.take<bf16>(n * d);
    L.gate_up = a.take<bf16>(n * 2 * f);
    L.rstd1 = a.take<float>(n), L.rstd2 = a.take<float>(n), L.lse = a.take<float>(n * h);
  };
  Layer shared{};
  shared.n1 = a.take<bf16>(n * d), shared.n2 = a.take<bf16>(n * d), shared.act = a.take<bf16>(n * f);
  if (recompute_) carve_kept(shared);
  layers_.assign(static_cast<size_t>(c_.num_hidden_layers), shared);
  for (auto& L : layers_) {
    L.x = a.take<bf16>(n * d);
    if (!recompute_) carve_kept(L);
  }
  x_final_ = a.take<bf16>(n * d), n_final_ = a.take<bf16>(n * d), branch_ = a.take<bf16>(n * d);
  rstd_final_ = a.take<float>(n);
  logp_ = a.take<float>(t), target_lse_ = a.take<float>(t), logit_sum_ = a.take<float>(t);
  d_res_ = a.take<float>(n * d), d_norm_ = a.take<float>(n * d);
  partials_ = a.take<float>(std::max(bc::rmsnorm_partials_floats(n, d), bc::rmsnorm_partials_floats(n, qkv)));
  d_res_bf16_ = a.take<bf16>(n * d), d_act_ = a.take<bf16>(n * f), d_gate_up_ = a.take<bf16>(n * 2 * f);
  d_o_ = a.take<bf16>(n * q), d_qkv_ = a.take<bf16>(n * qkv);

  backend::AttentionShape s;
  s.n_tokens = n, s.n_q_heads = h, s.n_kv_heads = c_.num_key_value_heads, s.head_dim = c_.head_dim;
  s.window = c_.attention_window().value_or(0);
  attention_ws_ = a.take_bytes(bc::attention_workspace_bytes(s));
  bc::TargetLogprobsShape ts;
  ts.n_rows = n, ts.hidden_dim = d, ts.vocab = c_.vocab_size, ts.n_targets = t;
  lm_head_ws_ = a.take_bytes(bc::target_logprobs_workspace_bytes(ts));
  if (lora_) lora_->carve(a, n);
  max_tokens_ = n, max_targets_ = t;
}

template <typename P, typename At>
DeviceTransformer::LayerParams<P> DeviceTransformer::layer_params(int64_t l, At&& at) const {
  auto tensor = [&](const char* suffix) -> P {
    const std::string name = fmt::format("model.layers.{}.{}", l, suffix);
    return layout_.has(name) ? at(layout_.offset(name)) : nullptr;
  };
  return {tensor("input_layernorm.weight"), tensor("self_attn.q_proj.weight"), tensor("self_attn.q_proj.bias"),
          tensor("self_attn.o_proj.weight"), tensor("self_attn.o_proj.bias"),
          tensor("post_attention_layernorm.weight"), tensor("mlp.gate_proj.weight"), tensor("mlp.down_proj.weight")};
}

DeviceTransformer::LayerParams<const bf16*> DeviceTransformer::layer_weights(WeightSource& weights, int64_t l) const {
  return layer_params<const bf16*>(l, [&](size_t offset) { return weights.at(offset); });
}

void DeviceTransformer::linear(const bf16* x, const bf16* w, const bf16* bias, bf16* y, int64_t n, int64_t in,
                               int64_t out, cudaStream_t s) {
  const auto timed = timer_.scope(OpKind::matmul, s);
  gemm().run(bc::linear_forward(x, w, bias, y, n, in, out), s);
}

void DeviceTransformer::linear_back(const bf16* x, const bf16* w, const bf16* dy, void* dx, bool dx_f32, float* dw,
                                    int64_t n, int64_t in, int64_t out, cudaStream_t s) {
  const auto timed = timer_.scope(OpKind::matmul, s);
  if (dx) gemm().run(bc::linear_input_grad(dy, w, dx, dx_f32, n, in, out), s);
  if (dw) gemm().run(bc::linear_weight_grad(dy, x, dw, n, in, out), s);
}

std::vector<bc::GemmParams> DeviceTransformer::products(int64_t n, int64_t t, bool backward, bool weight_grads) const {
  // The projections as layer_body and layer_backward run them (the input
  // gradient in fp32 where a norm's backward reads it). A product missing
  // here runs with the heuristic's algorithm: CudaEngineTuning's test counts them.
  const int64_t d = c_.hidden_size, q = c_.q_size(), kv = c_.kv_size(), f = c_.intermediate_size;
  const auto W = layer_params<const bf16*>(0, [](size_t) { return bc::kShapeOnlyBias; });
  struct Projection {
    bool bias;
    int64_t in, out;
    bool dx_f32;
  };
  const Projection projections[] = {
      {W.qkv_b != nullptr, d, q + 2 * kv, true}, {W.o_b != nullptr, q, d, false}, {false, d, 2 * f, true}, {false, f, d, false}};
  std::vector<bc::GemmParams> all;
  for (const Projection& p : projections) {
    all.push_back(bc::linear_forward(nullptr, nullptr, p.bias ? bc::kShapeOnlyBias : nullptr, nullptr, n, p.in, p.out));
    if (backward) all.push_back(bc::linear_input_grad(nullptr, nullptr, nullptr, p.dx_f32, n, p.in, p.out));
    if (backward && weight_grads) all.push_back(bc::linear_weight_grad(nullptr, nullptr, nullptr, n, p.in, p.out));
  }
  if (lora_)
    for (const bc::GemmParams& p : lora_->products(n, backward)) all.push_back(p);
  bc::TargetLogprobsShape ts;
  ts.n_rows = n, ts.hidden_dim = d, ts.vocab = c_.vocab_size, ts.n_targets = t;
  for (const bc::GemmParams& p : bc::target_logprobs_products(ts, backward, weight_grads)) all.push_back(p);
  return all;
}

void DeviceTransformer::prepare(const DeviceBatch& b, cudaStream_t s) {
  if (b.n_tokens > max_tokens_ || b.n_targets > max_targets_) fail("internal: batch larger than the carved workspace");
  timed(OpKind::attention, s, [&] { bc::attention_plan(attention_shape(b), attention_ws_, s); });
}

void DeviceTransformer::layer_body(const DeviceBatch& b, int64_t l, const LayerParams<const bf16*>& W,
                                   const Layer& L, bool with_down, cudaStream_t s) {
  const int64_t n = b.n_tokens, d = c_.hidden_size, q = c_.q_size(), kv = c_.kv_size(), f = c_.intermediate_size;
  const int64_t qkv = q + 2 * kv;
  linear(L.n1, W.qkv_w, W.qkv_b, L.qkv, n, d, qkv, s);
  adapter(kLoraQ, l, L.n1, L.qkv, qkv, n, s);  // before RoPE, as PEFT wraps q_proj/k_proj
  adapter(kLoraK, l, L.n1, L.qkv + q, qkv, n, s);
  adapter(kLoraV, l, L.n1, L.qkv + q + kv, qkv, n, s);
  bc::Rope r;
  r.q = L.qkv, r.k = L.qkv + q, r.q_row_stride = r.k_row_stride = qkv;
  r.positions = b.positions, r.inv_freq = inv_freq_.as<float>();
  r.n_tokens = n, r.n_q_heads = c_.num_attention_heads, r.n_kv_heads = c_.num_key_value_heads;
  r.head_dim = c_.head_dim;
  timed(OpKind::elementwise, s, [&] { bc::rope(r, s); });
  bc::AttentionForward ap;
  static_cast<backend::AttentionShape&>(ap) = attention_shape(b);
  ap.q = L.qkv, ap.k = L.qkv + q, ap.v = L.qkv + q + kv, ap.o = L.o, ap.lse = L.lse;
  ap.q_row_stride = ap.k_row_stride = ap.v_row_stride = qkv, ap.o_row_stride = q;
  ap.workspace = attention_ws_;
  timed(OpKind::attention, s, [&] { bc::attention_forward(ap, s); });
  linear(L.o, W.o_w, W.o_b, branch_, n, q, d, s);
  adapter(kLoraO, l, L.o, branch_, d, n, s);
  bc::AddRmsNormForward nf;
  nf.residual = L.x, nf.branch = branch_, nf.h_out = L.h, nf.weight = W.post_norm, nf.y = L.n2, nf.rstd = L.rstd2;
  nf.n_rows = n, nf.dim = d, nf.eps = static_cast<float>(c_.rms_norm_eps);
  timed(OpKind::elementwise, s, [&] { bc::add_rmsnorm_forward(nf, s); });
  linear(L.n2, W.gate_up_w, nullptr, L.gate_up, n, d, 2 * f, s);
  adapter(kLoraGate, l, L.n2, L.gate_up, 2 * f, n, s);
  adapter(kLoraUp, l, L.n2, L.gate_up + f, 2 * f, n, s);
  timed(OpKind::elementwise, s, [&] { bc::swiglu_forward({L.gate_up, L.act, n, f}, s); });
  if (!with_down) return;
  linear(L.act, W.down_w, nullptr, branch_, n, f, d, s);
  adapter(kLoraDown, l, L.act, branch_, d, n, s);
}

const float* DeviceTransformer::forward(const DeviceBatch& b, WeightSource& weights, cudaStream_t s,
                                       const DeviceLora::Pass* lora) {
  if (lora && !lora_) fail("internal: an adapter pass without enable_lora");
  pass_ = lora;
  const int64_t n = b.n_tokens, d = c_.hidden_size;
  const float eps = static_cast<float>(c_.rms_norm_eps);
  const int64_t L_count = c_.num_hidden_layers;
  bc::EmbeddingForward ef;
  ef.ids = b.tokens, ef.table = weights.at(layout_.offset("model.embed_tokens.weight"));
  ef.out = L_count > 0 ? layers_[0].x : branch_;
  ef.n_tokens = n, ef.vocab = c_.vocab_size, ef.dim = d;
  timed(OpKind::elementwise, s, [&] { bc::embedding_forward(ef, s); });
  for (int64_t l = 0; l < L_count; ++l) {
    const Layer& L = layers_[static_cast<size_t>(l)];
    weights.open_layer(l, l + 1 < L_count ? l + 1 : -1, s);
    const auto W = layer_weights(weights, l);
    bc::AddRmsNormForward nf;  // x_l = h_{l-1} + mlp_{l-1} (layer 0: the embeddings), n1 = norm(x_l)
    if (l == 0) {
      nf.residual = L.x;
    } else {
      nf.residual = layers_[static_cast<size_t>(l - 1)].h, nf.branch = branch_, nf.h_out = L.x;
    }
    nf.weight = W.in_norm, nf.y = L.n1, nf.rstd = L.rstd1, nf.n_rows = n, nf.dim = d, nf.eps = eps;
    timed(OpKind::elementwise, s, [&] { bc::add_rmsnorm_forward(nf, s); });
    layer_body(b, l, W, L, true, s);
    weights.close_layer(l, s);
  }
  bc::AddRmsNormForward nf;
  if (L_count > 0) {
    nf.residual = layers_.back().h, nf.branch = branch_, nf.h_out = x_final_;
  } else {
    nf.residual = branch_, nf.h_out = nullptr;
    check(cudaMemcpyAsync(x_final_, branch_, n * d * sizeof(bf16), cudaMemcpyDeviceToDevice, s), "copy");
  }
  nf.weight = weights.at(layout_.offset("model.norm.weight")), nf.y = n_final_, nf.rstd = rstd_final_;
  nf.n_rows = n, nf.dim = d, nf.eps = eps;
  timed(OpKind::elementwise, s, [&] { bc::add_rmsnorm_forward(nf, s); });

  bc::TargetLogprobsForward tp;
  tp.n_rows = n, tp.hidden_dim = d, tp.vocab = c_.vocab_size, tp.n_targets = b.n_targets;
  tp.hidden = n_final_;
  tp.lm_head = weights.at(layout_.offset(c_.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight"));
  tp.target_rows = b.target_rows, tp.target_ids = b.target_ids;
  tp.logp = logp_, tp.lse = target_lse_, tp.logit_sum = logit_sum_, tp.workspace = lm_head_ws_;
  timed(OpKind::lm_head, s, [&] { bc::target_logprobs_forward(gemm(), tp, s); });
  return logp_;
}

void DeviceTransformer::norm(const bf16* x, const bf16* weight, bf16* y, float* rstd, int64_t n, cudaStream_t s) {
  bc::AddRmsNormForward nf;
  nf.residual = x, nf.weight = weight, nf.y = y, nf.rstd = rstd;
  nf.n_rows = n, nf.dim = c_.hidden_size, nf.eps = static_cast<float>(c_.rms_norm_eps);
  timed(OpKind::elementwise, s, [&] { bc::add_rmsnorm_forward(nf, s); });
}

void DeviceTransformer::layer_backward(const DeviceBatch& b, int64_t l, const LayerParams<const bf16*>& W,
                                       const LayerParams<float*>& G, const Layer& L, cudaStream_t s) {
  const int64_t n = b.n_tokens, d = c_.hidden_size, q = c_.q_size(), kv = c_.kv_size(), f = c_.intermediate_size;
  const int64_t qkv = q + 2 * kv;
  // On entry d_res_ = d(loss)/d(x_{l+1}), x_{l+1} = h + down(swiglu(gate_up(n2))), n2 = norm(h).
  // Without recompute, act, n2 and n1 were not kept (carve): rebuilt here
  // just before their use; with it, layer_body has rebuilt everything.
  const bool rebuild = !recompute_;
  if (rebuild) timed(OpKind::elementwise, s, [&] { bc::swiglu_forward({L.gate_up, L.act, n, f}, s); });
  linear_back(L.act, W.down_w, d_res_bf16_, d_act_, false, G.down_w, n, f, d, s);
  adapter_back(kLoraDown, l, L.act, d_res_bf16_, d, d_act_, false, n, s);
  timed(OpKind::elementwise, s, [&] { bc::swiglu_backward({L.gate_up, d_act_, d_gate_up_, n, f}, s); });
  if (rebuild) norm(L.h, W.post_norm, L.n2, L.rstd2, n, s);
  linear_back(L.n2, W.gate_up_w, d_gate_up_, d_norm_, true, G.gate_up_w, n, d, 2 * f, s);
  adapter_back(kLoraGate, l, L.n2, d_gate_up_, 2 * f, d_norm_, true, n, s);
  adapter_back(kLoraUp, l, L.n2, d_gate_up_ + f, 2 * f, d_norm_, true, n, s);
  bc::RmsNormBackward nb;
  nb.h = L.h, nb.weight = W.post_norm, nb.rstd = L.rstd2, nb.dy = d_norm_, nb.d_h = d_res_, nb.d_h_bf16 = d_res_bf16_;
  nb.d_weight = G.post_norm, nb.partials = partials_, nb.n_rows = n, nb.dim = d;
  timed(OpKind::elementwise, s, [&] { bc::rmsnorm_backward(nb, s); });  // d_res_ = d(loss)/d(h)

  // h = x + o_proj(attention(rope(q), rope(k), v)), [q|k|v] = qkv_proj(n1), n1 = norm(x).
  linear_back(L.o, W.o_w, d_res_bf16_, d_o_, false, G.o_w, n, q, d, s);
  adapter_back(kLoraO, l, L.o, d_res_bf16_, d, d_o_, false, n, s);
  if (G.o_b) timed(OpKind::elementwise, s, [&] { bc::bias_backward({d_res_bf16_, d, G.o_b, partials_, n, d}, s); });
  bc::AttentionBackward ab;
  static_cast<backend::AttentionShape&>(ab) = attention_shape(b);
  ab.q = L.qkv, ab.k = L.qkv + q, ab.v = L.qkv + q + kv, ab.o = L.o, ab.d_o = d_o_, ab.lse = L.lse;
  ab.dq = d_qkv_, ab.dk = d_qkv_ + q, ab.dv = d_qkv_ + q + kv;
  ab.q_row_stride = ab.k_row_stride = ab.v_row_stride = qkv, ab.o_row_stride = ab.do_row_stride = q;
  ab.dq_row_stride = ab.dk_row_stride = ab.dv_row_stride = qkv;
  ab.workspace = attention_ws_;
  timed(OpKind::attention, s, [&] { bc::attention_backward(ab, s); });
  bc::Rope r;
  r.q = d_qkv_, r.k = d_qkv_ + q, r.q_row_stride = r.k_row_stride = qkv;
  r.positions = b.positions, r.inv_freq = inv_freq_.as<float>();
  r.n_tokens = n, r.n_q_heads = c_.num_attention_heads, r.n_kv_heads = c_.num_key_value_heads;
  r.head_dim = c_.head_dim, r.inverse = true;
  timed(OpKind::elementwise, s, [&] { bc::rope(r, s); });
  if (rebuild) norm(L.x, W.in_norm, L.n1, L.rstd1, n, s);
  linear_back(L.n1, W.qkv_w, d_qkv_, d_norm_, true, G.qkv_w, n, d, qkv, s);
  adapter_back(kLoraQ, l, L.n1, d_qkv_, qkv, d_norm_, true, n, s);
  adapter_back(kLoraK, l, L.n1, d_qkv_ + q, qkv, d_norm_, true, n, s);
  adapter_back(kLoraV, l, L.n1, d_qkv_ + q + kv, qkv, d_norm_, true, n, s);
  if (G.qkv_b) timed(OpKind::elementwise, s, [&] { bc::bias_backward({d_qkv_, qkv, G.qkv_b, partials_, n, qkv}, s); });
  nb = {};
  nb.h = L.x, nb.weight = W.in_norm, nb.rstd = L.rstd1, nb.dy = d_norm_, nb.d_h = d_res_, nb.d_h_bf16 = d_res_bf16_;
  nb.d_weight = G.in_norm, nb.partials = partials_, nb.n_rows = n, nb.dim = d;
  timed(OpKind::elementwise, s, [&] { bc::rmsnorm_backward(nb, s); });  // d_res_ = d(loss)/d(x_l)
}

void DeviceTransformer::backward(const DeviceBatch& b, WeightSource& weights, GradientSink* grads, cudaStream_t s,
                                 const DeviceLora::Pass* lora) {
  if (lora && (!lora_ || !lora->grads)) fail("internal: an adapter backward without enable_lora or gradients");
  pass_ = lora;
  const int64_t n = b.n_tokens, d = c_.hidden_size;
  const bool tied = c_.tie_word_embeddings;
  const char* head_name = tied ? "model.embed_tokens.weight" : "lm_head.weight";
  timed(OpKind::elementwise, s, [&] { bc::fill_f32(d_norm_, 0.0f, n * d, s); });
  timed(OpKind::elementwise, s, [&] { bc::fill_f32(d_res_, 0.0f, n * d, s); });
  bc::TargetLogprobsBackward tb;
  tb.n_rows = n, tb.hidden_dim = d, tb.vocab = c_.vocab_size, tb.n_targets = b.n_targets;
  tb.hidden = n_final_, tb.lm_head = weights.at(layout_.offset(head_name));
  tb.target_rows = b.target_rows, tb.target_ids = b.target_ids, tb.lse = target_lse_, tb.d_logp = b.d_logp;
  tb.d_hidden = d_norm_, tb.d_lm_head = grads ? grads->at(layout_.offset(head_name)) : nullptr;
  tb.workspace = lm_head_ws_;
  tb.row_order = b.row_order, tb.row_group_start = b.row_group_start, tb.n_row_groups = b.n_row_groups;
  timed(OpKind::lm_head, s, [&] { bc::target_logprobs_backward(gemm(), tb, s); });
  bc::RmsNormBackward nb;
  nb.h = x_final_, nb.weight = weights.at(layout_.offset("model.norm.weight")), nb.rstd = rstd_final_;
  nb.dy = d_norm_, nb.d_h = d_res_, nb.d_h_bf16 = d_res_bf16_;
  nb.d_weight = grads ? grads->at(layout_.offset("model.norm.weight")) : nullptr;
  nb.partials = partials_, nb.n_rows = n, nb.dim = d;
  timed(OpKind::elementwise, s, [&] { bc::rmsnorm_backward(nb, s); });

  for (int64_t l = c_.num_hidden_layers - 1; l >= 0; --l) {
    const Layer& L = layers_[static_cast<size_t>(l)];
    weights.open_layer(l, l - 1, s);
    const auto W = layer_weights(weights, l);
    if (recompute_) {  // rebuild this layer's activations from its saved input
      norm(L.x, W.in_norm, L.n1, L.rstd1, n, s);
      layer_body(b, l, W, L, false, s);
    }
    if (!grads) {
      layer_backward(b, l, W, LayerParams<float*>{}, L, s);
    } else {
      grads->open_layer(l, s);
      layer_backward(b, l, W, layer_params<float*>(l, [&](size_t offset) { return grads->at(offset); }), L, s);
      grads->close_layer(l, s);
    }
    weights.close_layer(l, s);
  }
  if (!grads) return;  // a frozen embedding table
  bc::EmbeddingBackward eb;
  eb.ids = b.tokens, eb.order = b.id_order, eb.group_start = b.id_group_start, eb.n_groups = b.n_id_groups;
  eb.d_out = d_res_, eb.d_table = grads->at(layout_.offset("model.embed_tokens.weight"));
  eb.n_tokens = n, eb.vocab = c_.vocab_size, eb.dim = d;
  timed(OpKind::elementwise, s, [&] { bc::embedding_backward(eb, s); });
}

void DeviceTransformer::pass_without_rows(WeightSource& weights, GradientSink* grads, bool backward, cudaStream_t s) {
  const int64_t layers = c_.num_hidden_layers;
  for (int64_t i = 0; i < layers; ++i) {  // the layer order and `next` of forward() and backward()
    const int64_t l = backward ? layers - 1 - i : i;
    weights.open_layer(l, backward ? l - 1 : (l + 1 < layers ? l + 1 : -1), s);
    if (grads) grads->open_layer(l, s), grads->close_layer(l, s);
    weights.close_layer(l, s);
  }
}

size_t workspace_bytes(DeviceTransformer& model, int64_t tokens, int64_t targets) {
  Arena count;
  carve_batch(count, tokens, targets);
  model.carve(count, tokens, targets);
  return count.used();
}

}  // namespace duet::engine::cuda
