#include "engine/cuda/device_parameters.hpp"

#include <algorithm>

#include "backend/cuda/adamw.hpp"
#include "backend/cuda/layers.hpp"

namespace duet::engine::cuda {

namespace bc = duet::backend::cuda;
using bc::check;

namespace {

// Host-order fp32 values into a device-layout fp32 buffer, tensor by tensor
// (no second host copy of an 8B model); the padding between groups is zeroed.
void upload_f32(const DeviceLayout& layout, const ParameterSet<float>& host, float* dev) {
  check(cudaMemset(dev, 0, layout.total * sizeof(float)), "clearing a parameter buffer");
  for (const auto& s : layout.slots)
    check(cudaMemcpy(dev + s.offset, host.values().data() + s.host_offset, s.numel * sizeof(float),
                     cudaMemcpyHostToDevice),
          "copying weights to the GPU");
}

void download(const DeviceLayout& layout, const float* dev, ParameterSet<float>& host) {
  for (const auto& s : layout.slots)
    check(cudaMemcpy(host.values().data() + s.host_offset, dev + s.offset, s.numel * sizeof(float),
                     cudaMemcpyDeviceToHost),
          "copying weights from the GPU");
}

}  // namespace

size_t largest_tensor(const DeviceLayout& layout) {
  size_t largest = 0;
  for (const auto& s : layout.slots) largest = std::max(largest, s.numel);
  return largest;
}

void each_tensor_on_device(const DeviceLayout& layout, const ParameterSet<float>& host, cudaStream_t stream,
                           const std::function<void(const DeviceSlot&, const float*)>& use) {
  DeviceBuffer staging(largest_tensor(layout) * sizeof(float), "loading the weights");
  for (const auto& s : layout.slots) {
    check(cudaMemcpyAsync(staging.as<float>(), host.values().data() + s.host_offset, s.numel * sizeof(float),
                          cudaMemcpyHostToDevice, stream),
          "copying weights to the GPU");
    use(s, staging.as<float>());
  }
  check(cudaStreamSynchronize(stream), "loading the weights");
}

void upload_bf16(const DeviceLayout& layout, const ParameterSet<float>& host, bf16* dev, cudaStream_t stream) {
  check(cudaMemsetAsync(dev, 0, layout.total * sizeof(bf16), stream), "clearing the weights");
  each_tensor_on_device(layout, host, stream, [&](const DeviceSlot& s, const float* values) {
    bc::convert_f32_to_bf16(values, dev + s.offset, static_cast<int64_t>(s.numel), stream);
  });
}

ParameterBytes parameter_bytes(size_t numel, EngineState state, bool device_weights) {
  ParameterBytes b;
  if (device_weights) b.weights = numel * sizeof(bf16);
  if (state != EngineState::scoring) b.grads = numel * sizeof(float);
  if (state == EngineState::training) b.master = numel * sizeof(float), b.moments = 2 * numel * sizeof(float);
  return b;
}

DeviceParameters::DeviceParameters(DeviceLayout layout, std::vector<TensorSlot> host_slots, EngineState state,
                                   const AdamWOptions& adamw, bool device_weights)
    : layout_(std::move(layout)),
      adamw_(adamw),
      host_(host_slots) {
  const size_t n = layout_.total;
  const ParameterBytes bytes = parameter_bytes(n, state, device_weights);
  if (bytes.weights) weights_.allocate(bytes.weights, "the bf16 weights");
  if (bytes.grads) grads_.allocate(bytes.grads, "the gradients");
  if (state != EngineState::training) return;
  // Host moments only with device moments (8 bytes a parameter of host memory: none under ZeRO-1).
  host_optimizer_ = std::make_unique<AdamW>(std::move(host_slots), adamw);
  master_.allocate(bytes.master, "the fp32 master weights");
  m_.allocate(bytes.moments / 2, "AdamW's first moments");
  v_.allocate(bytes.moments / 2, "AdamW's second moments");
  norm_partials_.allocate(static_cast<size_t>(bc::grad_norm_partials(static_cast<int64_t>(n))) * sizeof(double),
                          "the gradient norm");
  grad_norm_.allocate(sizeof(double), "the gradient norm");
  std::vector<int64_t> offsets;
  std::vector<uint8_t> decay;
  for (const auto& s : layout_.slots) offsets.push_back(static_cast<int64_t>(s.offset)), decay.push_back(s.decay);
  offsets.push_back(static_cast<int64_t>(n));
  slot_offsets_.assign(offsets.data(), offsets.size() * sizeof(int64_t), "the parameter table");
  slot_decay_.assign(decay.data(), decay.size(), "the parameter table");
}

void DeviceParameters::clear_state(cudaStream_t s) {
  if (!trains()) return;
  check(cudaMemsetAsync(master(), 0, master_.bytes(), s), "clearing the master weights");
  check(cudaMemsetAsync(m_.as<float>(), 0, m_.bytes(), s), "clearing AdamW's moments");
  check(cudaMemsetAsync(v_.as<float>(), 0, v_.bytes(), s), "clearing AdamW's moments");
}

void DeviceParameters::upload(cudaStream_t s) {
  check(cudaStreamSynchronize(s), "finishing the step");
  if (!trains()) {
    upload_bf16(layout_, host_, weights(), s);
    host_stale_ = false;
    return;
  }
  upload_f32(layout_, host_, master());
  upload_f32(layout_, host_optimizer_->first_moment(), m_.as<float>());
  upload_f32(layout_, host_optimizer_->second_moment(), v_.as<float>());
  steps_ = host_optimizer_->steps();
  bc::convert_f32_to_bf16(master(), weights(), static_cast<int64_t>(layout_.total), s);
  check(cudaStreamSynchronize(s), "copying the training state to the GPU");
  host_stale_ = false;
}

void DeviceParameters::download_state(cudaStream_t s) {
  if (!host_stale_) return;
  if (!trains()) fail("internal: weights made on the GPU are there only (training state needed to read them back)");
  check(cudaStreamSynchronize(s), "finishing the step");
  download(layout_, master(), host_);
  download(layout_, m_.as<float>(), host_optimizer_->first_moment());
  download(layout_, v_.as<float>(), host_optimizer_->second_moment());
  host_optimizer_->set_steps(steps_);
  host_stale_ = false;
}

ParameterSet<float>& DeviceParameters::host(cudaStream_t s) {
  download_state(s);
  return host_;
}

AdamW& DeviceParameters::host_optimizer(cudaStream_t s) {
  if (!host_optimizer_) fail("internal: AdamW's moments of a parameter set not built with the training state");
  download_state(s);
  return *host_optimizer_;
}

void DeviceParameters::zero_grad(cudaStream_t s) {
  check(cudaMemsetAsync(grads(), 0, grads_.bytes(), s), "zeroing the gradients");
}

const ParameterSet<float>& DeviceParameters::host_gradients(cudaStream_t s) {
  if (!host_grads_) host_grads_ = std::make_unique<ParameterSet<float>>(host_.slots());
  check(cudaStreamSynchronize(s), "finishing the backward");
  download(layout_, grads(), *host_grads_);
  return *host_grads_;
}

double DeviceParameters::step(double lr, cudaStream_t s) {
  const auto n = static_cast<int64_t>(layout_.total);
  ++steps_;
  bc::global_grad_norm(grads(), n, norm_partials_.as<double>(), grad_norm_.as<double>(), s);
  bc::AdamWStep p = adamw_scalars(adamw_, lr, steps_, grad_norm_.as<double>());
  p.master = master(), p.weights = weights(), p.grads = grads();
  p.m = m_.as<float>(), p.v = v_.as<float>(), p.n = n;
  p.slot_offsets = slot_offsets_.as<int64_t>(), p.slot_decay = slot_decay_.as<uint8_t>();
  p.n_slots = static_cast<int64_t>(layout_.slots.size());
  bc::adamw_step(p, s);
  host_stale_ = true;
  return finish_step(grad_norm_.as<double>(), s);
}

bc::AdamWStep adamw_scalars(const AdamWOptions& o, double lr, int64_t step, const double* grad_norm) {
  bc::AdamWStep p;
  p.grad_norm = grad_norm, p.max_norm = o.max_grad_norm;
  p.lr = lr, p.beta1 = o.beta1, p.beta2 = o.beta2, p.eps = o.eps;
  p.weight_decay = o.weight_decay, p.step = step;
  return p;
}

double finish_step(const double* grad_norm, cudaStream_t s) {
  double norm = 0;
  check(cudaMemcpyAsync(&norm, grad_norm, sizeof(double), cudaMemcpyDeviceToHost, s), "reading the gradient norm");
  check(cudaStreamSynchronize(s), "the optimizer step");
  return norm;
}

}  // namespace duet::engine::cuda
