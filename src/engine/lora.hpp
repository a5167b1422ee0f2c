#pragma once
// LoRA as PEFT defines it: each adapted linear layer W [out, in] gains a
// trainable pair A [r, in], B [out, r] and computes x W^T + scaling * B A x,
// scaling = lora_alpha / r (lora_alpha / sqrt(r) with rsLoRA). The base
// weights stay frozen; the adapter lives in its own ParameterSet whose tensor
// names are those PEFT writes in adapter_model.safetensors, so checkpoints,
// AdamW and the files walk it like any other parameter set. Engines share this
// file: the CPU engine and, later, the CUDA one.
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/batch.hpp"
#include "engine/parameters.hpp"
#include "model/config.hpp"

namespace duet::engine {

// The linear layers of a Llama-family block LoRA can adapt, in PEFT's names.
inline constexpr std::array<const char*, 7> kLoraModules = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                            "gate_proj", "up_proj", "down_proj"};

// Index of a module in kLoraModules (the dropout key and the engines' loops use it).
enum LoraModule : int { kLoraQ, kLoraK, kLoraV, kLoraO, kLoraGate, kLoraUp, kLoraDown };

struct LoraConfig {
  int64_t r = 16;         // TRL's defaults (ModelConfig: lora_r, lora_alpha, lora_dropout)
  double alpha = 32;
  double dropout = 0.05;
  std::vector<std::string> target_modules = {"q_proj", "v_proj"};  // PEFT's default for Llama, Qwen2, Mistral
  bool use_rslora = false;
  // Read from a PEFT adapter whose target_modules name module paths of single
  // layers ("model.layers.0.mlp.up_proj", as peft writes them for small
  // models): the layers each such type was named on. layout_adapter checks
  // they are all of the model's layers (duet adapts a type everywhere or nowhere).
  std::map<std::string, std::set<int64_t>> named_layers;

  double scaling() const;
  bool targets(const std::string& module) const;
  void validate() const;  // duet::fail with one line naming the option
};

// Expands "all-linear" and checks every name against kLoraModules (one line
// naming the unknown module otherwise); order as in kLoraModules, no repeats.
std::vector<std::string> parse_target_modules(const std::vector<std::string>& names);

// "model.layers.3.self_attn.q_proj" / "model.layers.3.mlp.down_proj".
std::string lora_module_path(int64_t layer, const std::string& module);
// PEFT's tensor names: "base_model.model.<module path>.lora_A.weight" (and lora_B).
std::string lora_a_name(int64_t layer, const std::string& module);
std::string lora_b_name(int64_t layer, const std::string& module);

struct LinearShape {
  int64_t in = 0, out = 0;
};
LinearShape lora_module_shape(const model::ModelConfig& config, const std::string& module);

// The adapter's slots: per layer, per targeted module, A then B (weight decay on).
std::vector<TensorSlot> layout_adapter(const model::ModelConfig& model, const LoraConfig& lora);

// PEFT's init_lora_weights=True: A ~ kaiming_uniform_(a=sqrt(5)), that is
// U(-1/sqrt(in), 1/sqrt(in)); B = 0. Seeded: the same seed gives the same A.
template <typename T>
void init_adapter(ParameterSet<T>& adapter, uint64_t seed);

// W += scaling * B A for every adapted layer (PEFT's merge_and_unload).
void merge_adapter(const model::ModelConfig& config, ParameterSet<float>& base, const LoraConfig& lora,
                   const ParameterSet<float>& adapter);

// What a forward or backward pass needs of an adapter. Dropout is applied
// only when `training` is set (PEFT's nn.Dropout in train mode).
template <typename T>
struct LoraPass {
  const LoraConfig* config = nullptr;
  const ParameterSet<T>* weights = nullptr;
  ParameterSet<T>* grads = nullptr;  // backward: accumulated into
  bool training = false;
  uint64_t dropout_key = 0;  // lora_dropout_key(...)
};

// The dropout mask's key for one scoring of one batch in a run: the same
// (seed, optimizer step, batch) always gives the same mask, so a batch scored
// twice in a step (coupled losses) and a resumed run see the masks of the
// uninterrupted run.
uint64_t lora_dropout_key(uint64_t seed, int64_t optimizer_step, const Batch& batch);

}  // namespace duet::engine
