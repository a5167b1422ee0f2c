#pragma once
// ZeRO stages 0 and 1 over several ranks: the whole fp32 gradient on every
// rank, summed over the ranks before the step. The backprops of a step
// accumulate locally (FlatGradients); the step's last one, armed by the
// trainer (Engine::mark_last_backprop), sums each layer's range over the
// ranks as the backward leaves it: an event on the compute stream, NCCL's
// stream waits for it and runs one in-place all-reduce of the layer, while
// the backward goes on with the layer below (PyTorch DDP's bucketed
// all-reduce). finish_step then sums the rest (the embedding, final norm and
// LM head, made at the backward's two ends; or everything, when no backward
// was armed) and waits. One rank without NCCL: nothing is summed.
#include <cstdint>
#include <utility>
#include <vector>

#include "dist/communicator.hpp"
#include "engine/cuda/device_transformer.hpp"
#include "engine/cuda/zero_collectives.hpp"
#include "engine/device_layout.hpp"
#include "model/config.hpp"

namespace duet::engine::cuda {

class ReducedGradients final : public GradientSink {
 public:
  ReducedGradients(const model::ModelConfig& config, const DeviceLayout& layout, float* grads);
  ~ReducedGradients() override;
  ReducedGradients(const ReducedGradients&) = delete;
  ReducedGradients& operator=(const ReducedGradients&) = delete;

  void set_communicator(dist::Communicator& comm);
  // The next backward is the step's last: it sums each layer as it leaves it.
  void arm() { armed_ = true; }
  bool armed() const { return armed_; }
  // zero_grad: a new step.
  void reset() { armed_ = layers_summed_ = summed_ = false; }

  float* at(size_t offset) override;
  void close_layer(int64_t l, cudaStream_t s) override;
  // After a backward: an armed one's layers are being summed.
  void finish_backward();
  // Before the step (or reading the gradients): the whole gradient summed over the ranks; waits (collective).
  void finish_step(cudaStream_t s);
  // An armed backward summed the layers, finish_step not yet the rest.
  bool partly_summed() const { return layers_summed_ && !summed_; }

 private:
  float* grads_;
  std::vector<std::pair<size_t, size_t>> layers_, outer_;  // device ranges
  size_t total_;
  ZeroCollectives collectives_;
  cudaEvent_t ready_ = nullptr;
  bool armed_ = false, layers_summed_ = false, summed_ = false;
};

}  // namespace duet::engine::cuda
