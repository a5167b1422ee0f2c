#pragma once
// The CUDA engine: bf16 training on one GPU. The model's weights in bf16 with,
// when it is trained, fp32 master weights, gradients and AdamW moments (one
// flat buffer each, in DeviceLayout order: cuda::DeviceParameters); the frozen
// reference model in bf16 on the same GPU. With LoRA the model is frozen (bf16
// only) and an adapter is trained the same way; the reference is then the
// model with the adapter off. At ZeRO stage 1 the fp32 master weights and
// moments are this rank's shard only (cuda::DeviceShard), from construction;
// at stage 2 the fp32 gradients too (cuda::ShardedGradients: reduced layer by
// layer during the backward); at stage 3 the bf16 weights of the model and of
// the reference too (cuda::ShardedWeights: gathered layer by layer during
// every pass).
#include <memory>
#include <optional>
#include <vector>

#include "engine/cuda/device_batch.hpp"
#include "engine/cuda/device_memory.hpp"
#include "engine/cuda/device_parameters.hpp"
#include "engine/cuda/device_transformer.hpp"
#include "engine/device_layout.hpp"
#include "engine/cuda/device_shard.hpp"
#include "engine/cuda/reduced_gradients.hpp"
#include "engine/cuda/sharded_gradients.hpp"
#include "engine/cuda/sharded_weights.hpp"
#include "engine/engine.hpp"
#include "engine/sharded_adamw.hpp"

namespace duet::engine {

class CudaEngine final : public Engine {
 public:
  explicit CudaEngine(const EngineOptions& options);
  ~CudaEngine() override;

  const model::ModelConfig& config() const override { return config_; }
  bool has_reference() const override { return reference_weights_ || reference_is_base_; }
  std::vector<ResponseLogp> score_policy(const Batch& batch) override;
  std::vector<ResponseLogp> score_reference(const Batch& batch) override;
  void zero_grad() override;
  void backprop(const Batch& batch, std::span<const double> d_response) override;
  void backprop_empty() override;
  void score_empty(bool reference) override;
  void mark_last_backprop() override;
  const ParameterSet<float>& gradients() override;
  double optimizer_step(double lr) override;
  ParameterSet<float>& master_weights() override;
  AdamW& optimizer() override;
  void state_changed() override;

  // Data parallel: the fp32 gradients are summed over the ranks (NCCL, on
  // the device; layer by layer during the step's last backward when the
  // trainer marks it) before each step, so every rank takes the same step. Stage 0:
  // every rank keeps the whole optimizer. Stage 1 (EngineOptions::zero_stage):
  // each rank updates its shard, whose host view (for checkpoints) is
  // sharded_optimizer(); gather_weights() brings the fp32 master to the host
  // for a save. Stage 2: the gradients are summed into each rank's shard
  // during the backward, so every rank must run as many backprops
  // (backprop_empty where it has no row). Stage 3: each layer's weights are
  // gathered as a pass reaches it, so every rank must also run as many
  // forwards of the policy and of the reference (score_empty).
  void enable_data_parallel(dist::Communicator& comm, int zero_stage) override;
  ShardedAdamW* sharded_optimizer() override { return sharded_.get(); }
  void gather_weights() override;
  void gather_working_weights() override {}  // stages 0-2: whole after every step; 3: gathered per layer

  const LoraConfig* lora() const override { return lora_ ? &*lora_ : nullptr; }
  const ParameterSet<float>& base_weights() override { return model_params_->host(stream_); }
  void set_training(bool on) override { training_ = on; }

  // Tunes the matrix products rows of up to `tokens` / `targets` bring
  // (tune_products), then allocates their activations.
  void reserve(int64_t tokens, int64_t targets) override;
  std::string product_algorithms() const override;
  bool use_product_algorithms(const std::string& text) override;
  // Matrix products run since construction with an algorithm no tuning chose (tests).
  int64_t untuned_products() const;
  // In use on the device now (cudaMemGetInfo: this process's allocations, the
  // CUDA context and cuBLASLt's workspace; the engine allocates nothing per step,
  // so after a step this is the peak).
  double device_memory_gib() const override;
  void set_op_timing(bool on) override;
  std::vector<std::pair<std::string, double>> take_op_seconds() override;

 private:
  void ensure_capacity(int64_t n_tokens, int64_t n_targets);
  // cuBLASLt's algorithms timed, before the first step, for every product
  // kind and bucket of token (and target) counts up to these, then refined at
  // every count a row can bring (docs/cuda-engine.md, "Matrix products");
  // data parallel, rank 0 times and every rank uses its choices.
  void tune_products(int64_t tokens, int64_t targets);
  int64_t longest_row_in_free_memory();  // for the out-of-memory message
  void load_batch(const Batch& batch);
  std::vector<ResponseLogp> score_with(const Batch& batch, cuda::WeightSource& weights,
                                       const cuda::DeviceLora::Pass* lora);
  // Where a step or a load writes this rank's bf16 pieces (ZeRO-1/2/3).
  cuda::PieceWeights piece_weights() const;
  // After the shard's bf16 pieces changed: every rank's whole again (stages 1-2), or the outer tensors (3).
  void share_weights();
  void sum_adapter_gradients();  // LoRA on several ranks, before the step
  cuda::DeviceLora::Pass adapter_pass(const Batch& batch, bool with_grads) const;
  // What is trained: the adapter under LoRA, else the model.
  cuda::DeviceParameters& trained() const { return adapter_ ? *adapter_ : *model_params_; }
  // The constructor's steps, in order.
  void load_policy(const EngineOptions& o);
  void load_reference(const EngineOptions& o);
  void load_adapter(const EngineOptions& o);
  std::unique_ptr<cuda::WeightSource> make_sharded(const char* what, cuda::ShardedWeights*& alias);
  void random_weights(uint64_t seed, float std);
  void require(EngineState needed, const char* what) const;
  dist::Communicator& sharded_comm(const char* what) const;

  model::ModelConfig config_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::DeviceParameters> model_params_;
  std::optional<LoraConfig> lora_;
  std::unique_ptr<cuda::DeviceParameters> adapter_;
  std::unique_ptr<cuda::DeviceTransformer> model_;

  cuda::DeviceBuffer reference_;  // stages 0-2
  std::shared_ptr<cuda::LayerBuffers> gathered_;                        // ZeRO-3: two layers, policy's or reference's
  std::unique_ptr<cuda::WeightSource> policy_weights_, reference_weights_;  // what passes read
  cuda::ShardedWeights* sharded_policy_ = nullptr;     // ZeRO-3: policy_weights_
  cuda::ShardedWeights* sharded_reference_ = nullptr;  // ZeRO-3: reference_weights_
  bool reference_is_base_ = false;
  uint64_t lora_seed_ = 0;
  bool training_ = false;
  dist::Communicator* comm_ = nullptr;  // data parallel: the gradients' all-reduce
  int rank_ = 0, ranks_ = 1, zero_stage_ = 0;
  AdamWOptions adamw_;
  std::unique_ptr<cuda::DeviceShard> shard_;  // ZeRO-1/2: this rank's master and moments
  std::unique_ptr<cuda::ShardedGradients> grads_;  // ZeRO-2/3: this rank's gradient and the staging
  std::unique_ptr<cuda::ReducedGradients> reduced_;  // ZeRO-0/1, data parallel: the gradients' sum over the ranks
  std::unique_ptr<ParameterSet<float>> host_grads_;  // ZeRO-2: gradients() (this shard's range; zero elsewhere)
  std::unique_ptr<ShardedAdamW> sharded_;     // ZeRO-1/2: their host view (its step() is the CPU engine's)
  bool host_master_stale_ = false;            // ZeRO-1/2: the host master lags the device's shards
  cuda::DeviceBuffer workspace_;
  cuda::DeviceBatch batch_;
  cuda::PinnedBuffer staging_, results_;
  int64_t cap_tokens_ = 0, cap_targets_ = 0;
  Batch loaded_;  // the batch whose arrays are on the device (compared, not re-sent)
  bool has_loaded_ = false;
};

}  // namespace duet::engine
