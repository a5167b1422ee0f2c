#include "model/tensor_layout.hpp"

#include <fmt/format.h>

namespace duet::model {

std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c) {
  const int64_t d = c.hidden_size;
  std::vector<ExpectedTensor> out;
  out.push_back({"model.embed_tokens.weight", {c.vocab_size, d}});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const auto p = fmt::format("model.layers.{}.", i);
    out.push_back({p + "input_layernorm.weight", {d}});
    out.push_back({p + "self_attn.q_proj.weight", {c.q_size(), d}});
    if (c.has_qkv_bias()) out.push_back({p + "self_attn.q_proj.bias", {c.q_size()}});
    out.push_back({p + "self_attn.k_proj.weight", {c.kv_size(), d}});
    if (c.has_qkv_bias()) out.push_back({p + "self_attn.k_proj.bias", {c.kv_size()}});
    out.push_back({p + "self_attn.v_proj.weight", {c.kv_size(), d}});
    if (c.has_qkv_bias()) out.push_back({p + "self_attn.v_proj.bias", {c.kv_size()}});
    out.push_back({p + "self_attn.o_proj.weight", {d, c.q_size()}});
    if (c.has_o_bias()) out.push_back({p + "self_attn.o_proj.bias", {d}});
    out.push_back({p + "post_attention_layernorm.weight", {d}});
    out.push_back({p + "mlp.gate_proj.weight", {c.intermediate_size, d}});
    out.push_back({p + "mlp.up_proj.weight", {c.intermediate_size, d}});
    out.push_back({p + "mlp.down_proj.weight", {d, c.intermediate_size}});
  }
  out.push_back({"model.norm.weight", {d}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {c.vocab_size, d}});
  return out;
}

bool is_ignorable_tensor(const ModelConfig& c, const std::string& name) {
  if (c.tie_word_embeddings && name == "lm_head.weight") return true;
  constexpr std::string_view kInvFreq = ".self_attn.rotary_emb.inv_freq";
  return name.starts_with("model.layers.") && name.ends_with(kInvFreq);
}

}  // namespace duet::model
