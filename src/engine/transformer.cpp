#include "engine/transformer.hpp"

#include <fmt/format.h>

#include "backend/attention.hpp"
#include "backend/embedding.hpp"
#include "backend/linear.hpp"
#include "backend/lora.hpp"
#include "backend/residual.hpp"
#include "backend/rmsnorm.hpp"
#include "backend/rope.hpp"
#include "backend/swiglu.hpp"
#include "backend/target_logprobs.hpp"
#include "model/rope.hpp"
#include "util/error.hpp"

namespace duet::engine {

namespace be = duet::backend;
namespace cpu = duet::backend::cpu;

namespace {

template <typename V>
void grow(V& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

// Pointers to one layer's tensors in a ParameterSet (weights or gradients);
// null where the config has no such tensor.
template <typename P>
struct LayerTensors {
  P in_norm, q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b, post_norm, gate_w, up_w, down_w;
};

template <typename T, typename Set>
auto layer_tensors(Set& set, int64_t l) {
  using P = decltype(set.data(std::string()));
  auto get = [&](const std::string& suffix) -> P {
    std::string name = fmt::format("model.layers.{}.{}", l, suffix);
    return set.find(name) ? set.data(name) : nullptr;
  };
  return LayerTensors<P>{get("input_layernorm.weight"), get("self_attn.q_proj.weight"), get("self_attn.q_proj.bias"),
                         get("self_attn.k_proj.weight"), get("self_attn.k_proj.bias"), get("self_attn.v_proj.weight"),
                         get("self_attn.v_proj.bias"),   get("self_attn.o_proj.weight"), get("self_attn.o_proj.bias"),
                         get("post_attention_layernorm.weight"), get("mlp.gate_proj.weight"),
                         get("mlp.up_proj.weight"),      get("mlp.down_proj.weight")};
}

// The LM head: its own tensor, or the embeddings when tied.
template <typename Set>
auto lm_head(Set& set, const model::ModelConfig& c) {
  return set.data(c.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight");
}

template <typename T>
void linear(const T* x, const T* w, const T* b, T* y, int64_t rows, int64_t in, int64_t out) {
  be::LinearParams<T> p;
  p.x = x, p.weight = w, p.bias = b, p.y = y, p.n_rows = rows, p.in_features = in, p.out_features = out;
  cpu::linear_forward(p);
}

// dx is written (or skipped when null); dW and db accumulate.
template <typename T>
void linear_back(const T* x, const T* w, const T* dy, T* dx, T* dw, T* db, int64_t rows, int64_t in, int64_t out) {
  be::LinearBackwardParams<T> p;
  p.x = x, p.weight = w, p.dy = dy, p.dx = dx, p.d_weight = dw, p.d_bias = db;
  p.n_rows = rows, p.in_features = in, p.out_features = out;
  cpu::linear_backward(p);
}

template <typename T>
void rmsnorm(const T* x, const T* w, T* y, T* rstd, int64_t rows, int64_t dim, double eps) {
  be::RmsNormParams<T> p;
  p.x = x, p.weight = w, p.y = y, p.rstd = rstd, p.n_rows = rows, p.dim = dim, p.eps = eps;
  cpu::rmsnorm_forward(p);
}

template <typename T>
void rmsnorm_back(const T* x, const T* w, const T* rstd, const T* dy, T* dx, T* dw, int64_t rows, int64_t dim) {
  be::RmsNormBackwardParams<T> p;
  p.x = x, p.weight = w, p.rstd = rstd, p.dy = dy, p.dx = dx, p.d_weight = dw, p.n_rows = rows, p.dim = dim;
  cpu::rmsnorm_backward(p);
}

template <typename T>
void add(T* y, const T* x, int64_t n) {
  be::ResidualAddParams<T> p;
  p.y = y, p.x = x, p.n = n;
  cpu::residual_add(p);
}

template <typename T>
be::AttentionShape attention_shape(const model::ModelConfig& c, const Batch& b) {
  be::AttentionShape s;
  s.n_tokens = b.n_tokens();
  s.n_q_heads = c.num_attention_heads;
  s.n_kv_heads = c.num_key_value_heads;
  s.head_dim = c.head_dim;
  s.visible_until = b.visible_until.data();
  s.positions = b.positions.data();
  s.window = c.attention_window().value_or(0);
  return s;
}

template <typename T>
be::RopeParams<T> rope_params(const model::ModelConfig& c, const Batch& b, T* q, T* k, const float* inv_freq) {
  be::RopeParams<T> p;
  p.q = q, p.k = k, p.n_tokens = b.n_tokens();
  p.n_q_heads = c.num_attention_heads, p.n_kv_heads = c.num_key_value_heads, p.head_dim = c.head_dim;
  p.set_packed_strides();
  p.positions = b.positions.data();
  p.inv_freq = inv_freq;
  // transformers multiplies positions by inv_freq in fp32; match it in the fp32 engine.
  p.fp32_angles = std::is_same_v<T, float>;
  return p;
}

// The LM-head inputs shared by the target log-prob forward and backward.
template <typename T>
be::TargetLogprobsInputs<T> target_inputs(const model::ModelConfig& c, const Batch& b, const T* hidden,
                                          const T* head) {
  be::TargetLogprobsInputs<T> in;
  in.hidden = hidden, in.lm_head = head;
  in.target_rows = b.target_rows.data(), in.target_ids = b.target_ids.data();
  in.n_rows = b.n_tokens(), in.hidden_dim = c.hidden_size, in.vocab = c.vocab_size, in.n_targets = b.n_targets();
  return in;
}

template <typename T>
void lora_shape(be::LoraShape<T>& p, const LoraPass<T>& lora, int64_t layer, int module, const T* x, int64_t rows,
                int64_t in, int64_t out, std::vector<T>& scratch) {
  const std::string name = kLoraModules[static_cast<size_t>(module)];
  const LoraConfig& c = *lora.config;
  p.x = x, p.a = lora.weights->data(lora_a_name(layer, name)), p.b = lora.weights->data(lora_b_name(layer, name));
  p.n_rows = rows, p.in_features = in, p.out_features = out, p.rank = c.r;
  p.scaling = c.scaling();
  p.dropout = lora.training ? c.dropout : 0.0;
  p.dropout_key = be::lora_module_key(lora.dropout_key, layer, module);
  grow(scratch, be::lora_scratch_elements(rows, in, c.r));
  p.scratch = scratch.data();
}

bool adapts(const auto* lora, int module) {
  return lora && lora->config->targets(kLoraModules[static_cast<size_t>(module)]);
}

// y += the adapter's share of layer `module` (nothing when it is not adapted).
template <typename T>
void lora_add(const LoraPass<T>* lora, int64_t layer, int module, const T* x, T* y, int64_t rows, int64_t in,
              int64_t out, std::vector<T>& scratch) {
  if (!adapts(lora, module)) return;
  be::LoraParams<T> p;
  lora_shape<T>(p, *lora, layer, module, x, rows, in, out, scratch);
  p.y = y;
  cpu::lora_forward(p);
}

// dx += the adapter's share, and its A and B gradients accumulate.
template <typename T>
void lora_back(const LoraPass<T>* lora, int64_t layer, int module, const T* x, const T* dy, T* dx, int64_t rows,
               int64_t in, int64_t out, std::vector<T>& scratch) {
  if (!adapts(lora, module)) return;
  const std::string name = kLoraModules[static_cast<size_t>(module)];
  be::LoraBackwardParams<T> p;
  lora_shape<T>(p, *lora, layer, module, x, rows, in, out, scratch);
  p.dy = dy, p.dx = dx;
  p.da = lora->grads->data(lora_a_name(layer, name)), p.db = lora->grads->data(lora_b_name(layer, name));
  cpu::lora_backward(p);
}

}  // namespace

template <typename T>
void Workspace<T>::reserve(const model::ModelConfig& c, int64_t n, int64_t n_targets) {
  const int64_t d = c.hidden_size, q = c.q_size(), kv = c.kv_size(), f = c.intermediate_size;
  const int64_t h = c.num_attention_heads;
  layers.resize(static_cast<size_t>(c.num_hidden_layers));
  for (auto& L : layers) {
    grow(L.x, n * d), grow(L.n1, n * d), grow(L.rstd1, n), grow(L.q, n * q), grow(L.k, n * kv), grow(L.v, n * kv);
    grow(L.o, n * q), grow(L.lse, n * h), grow(L.h, n * d), grow(L.n2, n * d), grow(L.rstd2, n);
    grow(L.gate, n * f), grow(L.up, n * f), grow(L.act, n * f);
  }
  grow(x_final, n * d), grow(n_final, n * d), grow(rstd_final, n);
  grow(target_lse, n_targets), grow(target_logp, n_targets), grow(target_logit_sum, n_targets);
  grow(dx, n * d), grow(dh, n * d), grow(dn, n * d), grow(dtmp, n * std::max(d, f));
  grow(dq, n * q), grow(dk, n * kv), grow(dv, n * kv), grow(d_o, n * q);
  grow(dgate, n * f), grow(dup, n * f), grow(dact, n * f);
}

template <typename T>
Transformer<T>::Transformer(model::ModelConfig config)
    : config_(std::move(config)), inv_freq_(model::rope_inverse_frequencies(config_)) {}

template <typename T>
std::span<const T> Transformer<T>::forward(const Batch& b, const ParameterSet<T>& params, Workspace<T>& ws,
                                           const LoraPass<T>* lora) const {
  const auto& c = config_;
  check_batch(b, c.vocab_size);
  const int64_t n = b.n_tokens(), d = c.hidden_size, q = c.q_size(), kv = c.kv_size(), f = c.intermediate_size;
  ws.reserve(c, n, b.n_targets());

  {  // Embeddings into the first layer's residual input.
    be::EmbeddingParams<T> p;
    p.ids = b.tokens.data(), p.table = params.data("model.embed_tokens.weight");
    p.out = c.num_hidden_layers > 0 ? ws.layers[0].x.data() : ws.x_final.data();
    p.n_tokens = n, p.vocab = c.vocab_size, p.dim = d;
    cpu::embedding_forward(p);
  }
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    auto& L = ws.layers[static_cast<size_t>(l)];
    const auto W = layer_tensors<T>(params, l);
    T* x_next = l + 1 < c.num_hidden_layers ? ws.layers[static_cast<size_t>(l + 1)].x.data() : ws.x_final.data();
    // Attention block.
    rmsnorm(L.x.data(), W.in_norm, L.n1.data(), L.rstd1.data(), n, d, c.rms_norm_eps);
    linear(L.n1.data(), W.q_w, W.q_b, L.q.data(), n, d, q);
    lora_add(lora, l, kLoraQ, L.n1.data(), L.q.data(), n, d, q, ws.lora_scratch);
    linear(L.n1.data(), W.k_w, W.k_b, L.k.data(), n, d, kv);
    lora_add(lora, l, kLoraK, L.n1.data(), L.k.data(), n, d, kv, ws.lora_scratch);
    linear(L.n1.data(), W.v_w, W.v_b, L.v.data(), n, d, kv);
    lora_add(lora, l, kLoraV, L.n1.data(), L.v.data(), n, d, kv, ws.lora_scratch);
    cpu::rope_forward(rope_params<T>(c, b, L.q.data(), L.k.data(), inv_freq_.data()));
    be::AttentionParams<T> ap;
    static_cast<be::AttentionShape&>(ap) = attention_shape<T>(c, b);
    ap.q = L.q.data(), ap.k = L.k.data(), ap.v = L.v.data(), ap.o = L.o.data(), ap.lse = L.lse.data();
    ap.set_packed_strides();
    cpu::attention_forward(ap);
    linear(L.o.data(), W.o_w, W.o_b, L.h.data(), n, q, d);
    lora_add(lora, l, kLoraO, L.o.data(), L.h.data(), n, q, d, ws.lora_scratch);
    add(L.h.data(), L.x.data(), n * d);  // h = x + attn
    // MLP block.
    rmsnorm(L.h.data(), W.post_norm, L.n2.data(), L.rstd2.data(), n, d, c.rms_norm_eps);
    linear(L.n2.data(), W.gate_w, static_cast<const T*>(nullptr), L.gate.data(), n, d, f);
    lora_add(lora, l, kLoraGate, L.n2.data(), L.gate.data(), n, d, f, ws.lora_scratch);
    linear(L.n2.data(), W.up_w, static_cast<const T*>(nullptr), L.up.data(), n, d, f);
    lora_add(lora, l, kLoraUp, L.n2.data(), L.up.data(), n, d, f, ws.lora_scratch);
    be::SwiGluParams<T> sp;
    sp.gate = L.gate.data(), sp.up = L.up.data(), sp.out = L.act.data(), sp.n_rows = n, sp.dim = f;
    cpu::swiglu_forward(sp);
    linear(L.act.data(), W.down_w, static_cast<const T*>(nullptr), x_next, n, f, d);
    lora_add(lora, l, kLoraDown, L.act.data(), x_next, n, f, d, ws.lora_scratch);
    add(x_next, L.h.data(), n * d);  // x' = h + mlp
  }
  rmsnorm(ws.x_final.data(), params.data("model.norm.weight"), ws.n_final.data(), ws.rstd_final.data(), n, d,
          c.rms_norm_eps);
  be::TargetLogprobsParams<T> tp;
  static_cast<be::TargetLogprobsInputs<T>&>(tp) = target_inputs<T>(c, b, ws.n_final.data(), lm_head(params, c));
  tp.logp = ws.target_logp.data(), tp.lse = ws.target_lse.data(), tp.logit_sum = ws.target_logit_sum.data();
  cpu::target_logprobs_forward(tp);
  return std::span<const T>(ws.target_logp.data(), static_cast<size_t>(b.n_targets()));
}

template <typename T>
void Transformer<T>::backward(const Batch& b, const ParameterSet<T>& params, std::span<const T> d_logp,
                              Workspace<T>& ws, ParameterSet<T>& grads) const {
  backward_pass(b, params, d_logp, ws, &grads, nullptr);
}

template <typename T>
void Transformer<T>::backward(const Batch& b, const ParameterSet<T>& params, std::span<const T> d_logp,
                              Workspace<T>& ws, const LoraPass<T>& lora) const {
  if (!lora.grads) fail("internal: a LoRA backward needs the adapter's gradients");
  backward_pass(b, params, d_logp, ws, nullptr, &lora);
}

// grads null: the base weights are frozen (no gradient is computed for them).
template <typename T>
void Transformer<T>::backward_pass(const Batch& b, const ParameterSet<T>& params, std::span<const T> d_logp,
                                   Workspace<T>& ws, ParameterSet<T>* grads, const LoraPass<T>* lora) const {
  const auto& c = config_;
  const int64_t n = b.n_tokens(), d = c.hidden_size, q = c.q_size(), kv = c.kv_size(), f = c.intermediate_size;
  if (static_cast<int64_t>(d_logp.size()) != b.n_targets()) fail("internal: d_logp has the wrong length");

  // LM head and final norm: dx = d(loss)/d(x_final).
  std::fill(ws.dn.begin(), ws.dn.begin() + n * d, T(0));
  be::TargetLogprobsBackwardParams<T> tp;
  static_cast<be::TargetLogprobsInputs<T>&>(tp) = target_inputs<T>(c, b, ws.n_final.data(), lm_head(params, c));
  tp.lse = ws.target_lse.data(), tp.d_logp = d_logp.data();
  tp.d_hidden = ws.dn.data(), tp.d_lm_head = grads ? lm_head(*grads, c) : nullptr;
  cpu::target_logprobs_backward(tp);
  rmsnorm_back(ws.x_final.data(), params.data("model.norm.weight"), ws.rstd_final.data(), ws.dn.data(), ws.dx.data(),
               grads ? grads->data("model.norm.weight") : nullptr, n, d);

  for (int64_t l = c.num_hidden_layers - 1; l >= 0; --l) {
    auto& L = ws.layers[static_cast<size_t>(l)];
    const auto W = layer_tensors<T>(params, l);
    const auto G = grads ? layer_tensors<T>(*grads, l) : decltype(layer_tensors<T>(*grads, l)){};
    // MLP block: x' = h + down(swiglu(gate(n2), up(n2))), n2 = norm(h).
    std::copy(ws.dx.begin(), ws.dx.begin() + n * d, ws.dh.begin());  // residual path
    linear_back(L.act.data(), W.down_w, ws.dx.data(), ws.dact.data(), G.down_w, static_cast<T*>(nullptr), n, f, d);
    lora_back(lora, l, kLoraDown, L.act.data(), ws.dx.data(), ws.dact.data(), n, f, d, ws.lora_scratch);
    be::SwiGluBackwardParams<T> sp;
    sp.gate = L.gate.data(), sp.up = L.up.data(), sp.d_out = ws.dact.data();
    sp.d_gate = ws.dgate.data(), sp.d_up = ws.dup.data(), sp.n_rows = n, sp.dim = f;
    cpu::swiglu_backward(sp);
    linear_back(L.n2.data(), W.gate_w, ws.dgate.data(), ws.dn.data(), G.gate_w, static_cast<T*>(nullptr), n, d, f);
    lora_back(lora, l, kLoraGate, L.n2.data(), ws.dgate.data(), ws.dn.data(), n, d, f, ws.lora_scratch);
    linear_back(L.n2.data(), W.up_w, ws.dup.data(), ws.dtmp.data(), G.up_w, static_cast<T*>(nullptr), n, d, f);
    lora_back(lora, l, kLoraUp, L.n2.data(), ws.dup.data(), ws.dtmp.data(), n, d, f, ws.lora_scratch);
    add(ws.dn.data(), ws.dtmp.data(), n * d);
    rmsnorm_back(L.h.data(), W.post_norm, L.rstd2.data(), ws.dn.data(), ws.dtmp.data(), G.post_norm, n, d);
    add(ws.dh.data(), ws.dtmp.data(), n * d);  // dh = d(loss)/d(h)

    // Attention block: h = x + o_proj(attention(rope(q), rope(k), v)), q/k/v from n1 = norm(x).
    std::copy(ws.dh.begin(), ws.dh.begin() + n * d, ws.dx.begin());  // residual path
    linear_back(L.o.data(), W.o_w, ws.dh.data(), ws.d_o.data(), G.o_w, G.o_b, n, q, d);
    lora_back(lora, l, kLoraO, L.o.data(), ws.dh.data(), ws.d_o.data(), n, q, d, ws.lora_scratch);
    be::AttentionBackwardParams<T> ap;
    static_cast<be::AttentionShape&>(ap) = attention_shape<T>(c, b);
    ap.q = L.q.data(), ap.k = L.k.data(), ap.v = L.v.data(), ap.o = L.o.data(), ap.lse = L.lse.data();
    ap.d_o = ws.d_o.data(), ap.dq = ws.dq.data(), ap.dk = ws.dk.data(), ap.dv = ws.dv.data();
    ap.set_packed_strides();
    cpu::attention_backward(ap);
    cpu::rope_backward(rope_params<T>(c, b, ws.dq.data(), ws.dk.data(), inv_freq_.data()));
    linear_back(L.n1.data(), W.q_w, ws.dq.data(), ws.dn.data(), G.q_w, G.q_b, n, d, q);
    lora_back(lora, l, kLoraQ, L.n1.data(), ws.dq.data(), ws.dn.data(), n, d, q, ws.lora_scratch);
    linear_back(L.n1.data(), W.k_w, ws.dk.data(), ws.dtmp.data(), G.k_w, G.k_b, n, d, kv);
    lora_back(lora, l, kLoraK, L.n1.data(), ws.dk.data(), ws.dtmp.data(), n, d, kv, ws.lora_scratch);
    add(ws.dn.data(), ws.dtmp.data(), n * d);
    linear_back(L.n1.data(), W.v_w, ws.dv.data(), ws.dtmp.data(), G.v_w, G.v_b, n, d, kv);
    lora_back(lora, l, kLoraV, L.n1.data(), ws.dv.data(), ws.dtmp.data(), n, d, kv, ws.lora_scratch);
    add(ws.dn.data(), ws.dtmp.data(), n * d);
    rmsnorm_back(L.x.data(), W.in_norm, L.rstd1.data(), ws.dn.data(), ws.dtmp.data(), G.in_norm, n, d);
    add(ws.dx.data(), ws.dtmp.data(), n * d);  // dx = d(loss)/d(x) of this layer
  }
  if (!grads) return;  // frozen embeddings
  be::EmbeddingBackwardParams<T> ep;
  ep.ids = b.tokens.data(), ep.d_out = ws.dx.data(), ep.d_table = grads->data("model.embed_tokens.weight");
  ep.n_tokens = n, ep.vocab = c.vocab_size, ep.dim = d;
  cpu::embedding_backward(ep);
}

template struct Workspace<float>;
template struct Workspace<double>;
template class Transformer<float>;
template class Transformer<double>;

}  // namespace duet::engine
