#pragma once
// The CUDA engine: bf16 training on one GPU. Weights bf16 on the device with
// fp32 master weights, gradients and AdamW moments (one flat buffer each, in
// DeviceLayout order); the frozen reference model in bf16 on the same GPU.
// The host keeps mirrors of the master weights and moments for checkpoints,
// refreshed only when the trainer asks for them.
#include <memory>
#include <vector>

#include "engine/cuda/device_batch.hpp"
#include "engine/cuda/device_memory.hpp"
#include "engine/cuda/device_transformer.hpp"
#include "engine/device_layout.hpp"
#include "engine/engine.hpp"

namespace duet::engine {

class CudaEngine final : public Engine {
 public:
  explicit CudaEngine(const EngineOptions& options);
  ~CudaEngine() override;

  const model::ModelConfig& config() const override { return config_; }
  bool has_reference() const override { return reference_.bytes() > 0; }
  std::vector<ResponseLogp> score_policy(const Batch& batch) override;
  std::vector<ResponseLogp> score_reference(const Batch& batch) override;
  void zero_grad() override;
  void backprop(const Batch& batch, std::span<const double> d_response) override;
  const ParameterSet<float>& gradients() override;
  double optimizer_step(double lr) override;
  ParameterSet<float>& master_weights() override;
  AdamW& optimizer() override;
  void state_changed() override;

  // In use on the device now (cudaMemGetInfo: this process's allocations, the
  // CUDA context and cuBLASLt's workspace; the engine allocates nothing per step,
  // so after a step this is the peak).
  double device_memory_gib() const override;
  void set_op_timing(bool on) override;
  std::vector<std::pair<std::string, double>> take_op_seconds() override;

 private:
  void ensure_capacity(int64_t n_tokens, int64_t n_targets);
  void load_batch(const Batch& batch);
  std::vector<ResponseLogp> score_with(const Batch& batch, const backend::cuda::bf16* weights);
  void download_state();
  void random_weights(uint64_t seed, float std);
  void require(EngineState needed, const char* what) const;
  void upload_state();

  model::ModelConfig config_;
  DeviceLayout layout_;
  AdamWOptions adamw_options_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<cuda::DeviceTransformer> model_;

  cuda::DeviceBuffer weights_, reference_, master_, grads_, m_, v_;
  cuda::DeviceBuffer slot_offsets_, slot_decay_, norm_partials_, grad_norm_;
  cuda::DeviceBuffer workspace_;
  cuda::DeviceBatch batch_;
  cuda::PinnedBuffer staging_, results_;
  int64_t cap_tokens_ = 0, cap_targets_ = 0;
  Batch loaded_;  // the batch whose arrays are on the device (compared, not re-sent)
  bool has_loaded_ = false;

  ParameterSet<float> host_master_;
  std::unique_ptr<ParameterSet<float>> host_grads_;  // made on first use
  AdamW host_optimizer_;
  bool host_stale_ = false;
  bool random_ = false;
  int64_t steps_ = 0;
};

}  // namespace duet::engine
