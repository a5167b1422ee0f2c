#pragma once
// One parameter set on the GPU in a DeviceLayout — the model's weights, or a
// LoRA adapter's: the bf16 copy the products read, and, as far as the engine
// state asks, fp32 gradients (gradients) and fp32 master weights and AdamW
// moments (training). The host keeps mirrors of the master weights and the
// moments for checkpoints, refreshed only when asked for.
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "backend/cuda/adamw.hpp"
#include "engine/adamw.hpp"
#include "engine/cuda/device_memory.hpp"
#include "engine/device_layout.hpp"
#include "engine/engine.hpp"
#include "engine/parameters.hpp"

namespace duet::engine::cuda {

using backend::cuda::bf16;

// Elements of the layout's largest tensor (a load's staging).
size_t largest_tensor(const DeviceLayout& layout);
// Each tensor of `host` (host order, fp32) copied to the device through one
// fp32 staging buffer of the largest tensor, then use(slot, its values on the
// device), which queues its work on `stream` (the next tensor reuses the
// staging in stream order); returns when the stream is done.
void each_tensor_on_device(const DeviceLayout& layout, const ParameterSet<float>& host, cudaStream_t stream,
                           const std::function<void(const DeviceSlot&, const float*)>& use);
// Host-order fp32 values into a device-layout bf16 buffer (a reference model).
void upload_bf16(const DeviceLayout& layout, const ParameterSet<float>& host, bf16* dev, cudaStream_t stream);

// One step of the fused AdamW (backend/cuda/adamw.hpp) at `lr`: the options'
// hyperparameters and clipping by the device norm at `grad_norm`; the caller
// sets the buffers and the slot table.
backend::cuda::AdamWStep adamw_scalars(const AdamWOptions& o, double lr, int64_t step, const double* grad_norm);
// The norm at `grad_norm` once the stream's work (the step) is done.
double finish_step(const double* grad_norm, cudaStream_t s);

// The GPU bytes a parameter set of `numel` elements (padding included) holds
// in `state`, by buffer; the constructor allocates exactly these. Without
// `device_weights` (ZeRO-3: ShardedWeights has them) no bf16 weights.
struct ParameterBytes {
  size_t weights = 0, grads = 0, master = 0, moments = 0;  // bf16; fp32; fp32; fp32 first + second
  size_t total() const { return weights + grads + master + moments; }
};
ParameterBytes parameter_bytes(size_t numel, EngineState state, bool device_weights = true);

class DeviceParameters {
 public:
  DeviceParameters(DeviceLayout layout, std::vector<TensorSlot> host_slots, EngineState state,
                   const AdamWOptions& adamw, bool device_weights = true);

  const DeviceLayout& layout() const { return layout_; }
  size_t numel() const { return layout_.total; }
  bf16* weights() const { return weights_.as<bf16>(); }  // null without device_weights
  float* master() const { return master_.as<float>(); }  // null unless training
  float* grads() const { return grads_.as<float>(); }    // null in the scoring state
  bool has_grads() const { return grads_.bytes() > 0; }
  bool trains() const { return master_.bytes() > 0; }

  // The host mirror of the weights (master when training): read back from the
  // device when the device is newer. Write it, then call upload().
  ParameterSet<float>& host(cudaStream_t s);
  AdamW& host_optimizer(cudaStream_t s);
  // Host values -> device: master, moments and step count when training, then
  // the bf16 weights; only the bf16 weights otherwise.
  void upload(cudaStream_t s);
  // The device's master weights or moments changed (random init, a step).
  void device_changed() { host_stale_ = true; }
  // Zero master weights and moments (random init writes the master itself).
  void clear_state(cudaStream_t s);

  void zero_grad(cudaStream_t s);
  const ParameterSet<float>& host_gradients(cudaStream_t s);
  // Clipping + AdamW on the device at `lr`; the gradient norm before clipping.
  double step(double lr, cudaStream_t s);
  int64_t steps() const { return steps_; }

 private:
  void download_state(cudaStream_t s);

  DeviceLayout layout_;
  AdamWOptions adamw_;
  DeviceBuffer weights_, master_, grads_, m_, v_;
  DeviceBuffer slot_offsets_, slot_decay_, norm_partials_, grad_norm_;
  ParameterSet<float> host_;
  std::unique_ptr<ParameterSet<float>> host_grads_;  // made on first use
  std::unique_ptr<AdamW> host_optimizer_;  // training state only
  bool host_stale_ = false;
  int64_t steps_ = 0;
};

}  // namespace duet::engine::cuda
