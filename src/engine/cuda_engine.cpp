#include "engine/cuda_engine.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "backend/cuda/adamw.hpp"
#include "backend/cuda/attention.hpp"
#include "backend/cuda/layers.hpp"
#include "engine/scoring.hpp"
#include "util/error.hpp"

namespace duet::engine {

namespace bc = duet::backend::cuda;
using bc::bf16;
using bc::check;

namespace {

// One line for a machine this build cannot use.
void select_device() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0)
    fail("--device cuda: no CUDA GPU is visible ({}); run on a machine with an NVIDIA GPU or use --device cpu",
         status == cudaSuccess ? "none found" : cudaGetErrorString(status));
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, 0), "reading the GPU's properties");
  if (prop.major != 9)
    fail("--device cuda: {} has compute capability {}.{}, but this build's kernels need a Hopper GPU (sm_90a: H100, "
         "H200); use --device cpu",
         prop.name, prop.major, prop.minor);
  check(cudaSetDevice(0), "selecting GPU 0");
}

// Host-order fp32 values into a device-layout fp32 buffer, tensor by tensor
// (no second host copy of an 8B model); the padding between groups is zeroed.
void upload(const DeviceLayout& layout, const ParameterSet<float>& host, float* dev) {
  check(cudaMemset(dev, 0, layout.total * sizeof(float)), "clearing a parameter buffer");
  for (const auto& s : layout.slots)
    check(cudaMemcpy(dev + s.offset, host.values().data() + s.host_offset, s.numel * sizeof(float),
                     cudaMemcpyHostToDevice),
          "copying weights to the GPU");
}

// Host-order fp32 values into a device-layout bf16 buffer, through an fp32
// staging buffer of the largest tensor.
void upload_bf16(const DeviceLayout& layout, const ParameterSet<float>& host, bf16* dev, cudaStream_t stream) {
  size_t largest = 0;
  for (const auto& s : layout.slots) largest = std::max(largest, s.numel);
  cuda::DeviceBuffer staging(largest * sizeof(float), "loading the weights");
  check(cudaMemsetAsync(dev, 0, layout.total * sizeof(bf16), stream), "clearing the weights");
  for (const auto& s : layout.slots) {
    check(cudaMemcpyAsync(staging.as<float>(), host.values().data() + s.host_offset, s.numel * sizeof(float),
                          cudaMemcpyHostToDevice, stream),
          "copying weights to the GPU");
    bc::convert_f32_to_bf16(staging.as<float>(), dev + s.offset, static_cast<int64_t>(s.numel), stream);
  }
  check(cudaStreamSynchronize(stream), "loading the weights");
}

void download(const DeviceLayout& layout, const float* dev, ParameterSet<float>& host) {
  for (const auto& s : layout.slots)
    check(cudaMemcpy(host.values().data() + s.host_offset, dev + s.offset, s.numel * sizeof(float),
                     cudaMemcpyDeviceToHost),
          "copying weights from the GPU");
}

}  // namespace

CudaEngine::CudaEngine(const EngineOptions& o)
    : config_((select_device(), o.random_model ? *o.random_model : model::load_config(o.model))),
      layout_(config_),
      adamw_options_(o.adamw),
      host_master_(config_),
      host_optimizer_(config_, o.adamw) {
  backend::AttentionShape shape;
  shape.n_q_heads = config_.num_attention_heads, shape.n_kv_heads = config_.num_key_value_heads;
  shape.head_dim = config_.head_dim;
  bc::attention_check_supported(shape);
  check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "creating a CUDA stream");
  model_ = std::make_unique<cuda::DeviceTransformer>(config_, layout_, o.gradient_checkpointing);

  const size_t n = layout_.total;
  const bool training = o.state == EngineState::training;
  weights_.allocate(n * sizeof(bf16), "the bf16 weights");
  if (o.state != EngineState::scoring) grads_.allocate(n * sizeof(float), "the gradients");
  if (training) {
    master_.allocate(n * sizeof(float), "the fp32 master weights");
    m_.allocate(n * sizeof(float), "AdamW's first moments");
    v_.allocate(n * sizeof(float), "AdamW's second moments");
  }
  norm_partials_.allocate(static_cast<size_t>(bc::grad_norm_partials(static_cast<int64_t>(n))) * sizeof(double),
                          "the gradient norm");
  grad_norm_.allocate(sizeof(double), "the gradient norm");
  std::vector<int64_t> offsets;
  std::vector<uint8_t> decay;
  for (const auto& s : layout_.slots) offsets.push_back(static_cast<int64_t>(s.offset)), decay.push_back(s.decay);
  offsets.push_back(static_cast<int64_t>(n));
  slot_offsets_.allocate(offsets.size() * sizeof(int64_t), "the parameter table");
  slot_decay_.allocate(decay.size(), "the parameter table");
  check(cudaMemcpy(slot_offsets_.as<int64_t>(), offsets.data(), offsets.size() * sizeof(int64_t),
                   cudaMemcpyHostToDevice), "copying the parameter table");
  check(cudaMemcpy(slot_decay_.as<uint8_t>(), decay.data(), decay.size(), cudaMemcpyHostToDevice),
        "copying the parameter table");

  if (o.random_model) {
    random_weights(o.random_seed, static_cast<float>(o.random_std));
  } else {
    load_weights(host_master_, o.model);
    if (training) {
      upload_state();  // master, bf16 weights from it, zero moments
    } else {
      upload_bf16(layout_, host_master_, weights_.as<bf16>(), stream_);
    }
  }
  if (o.reference_is_start) {
    reference_.allocate(n * sizeof(bf16), "the reference model");
    check(cudaMemcpyAsync(reference_.as<bf16>(), weights_.as<bf16>(), n * sizeof(bf16), cudaMemcpyDeviceToDevice,
                          stream_),
          "copying the reference model");
  } else if (!o.reference.empty()) {
    ParameterSet<float> ref(config_);
    load_weights(ref, o.reference);
    reference_.allocate(n * sizeof(bf16), "the reference model");
    upload_bf16(layout_, ref, reference_.as<bf16>(), stream_);
  }
  if (grads_.bytes()) zero_grad();
  check(cudaStreamSynchronize(stream_), "loading the model");
}

// Random weights made on the device (no host values): each tensor drawn in
// fp32 from its own stream of the seed, then rounded to bf16; the master
// weights keep the fp32 draws and the host mirror is filled on demand.
void CudaEngine::random_weights(uint64_t seed, float std) {
  const auto host_slots = layout_parameters(config_);
  size_t largest = 0;
  for (const auto& s : layout_.slots) largest = std::max(largest, s.numel);
  cuda::DeviceBuffer staging(master_.bytes() ? 0 : largest * sizeof(float), "making random weights");
  check(cudaMemsetAsync(weights_.as<bf16>(), 0, weights_.bytes(), stream_), "clearing the weights");
  if (master_.bytes()) check(cudaMemsetAsync(master_.as<float>(), 0, master_.bytes(), stream_), "clearing");
  for (size_t i = 0; i < layout_.slots.size(); ++i) {
    const auto& s = layout_.slots[i];
    const std::string& name = host_slots[s.host_slot].name;
    float* f32 = master_.bytes() ? master_.as<float>() + s.offset : staging.as<float>();
    const auto numel = static_cast<int64_t>(s.numel);
    if (name.ends_with("norm.weight")) {
      bc::fill_f32(f32, 1.0f, numel, stream_);
    } else if (name.ends_with(".bias")) {
      bc::fill_f32(f32, 0.0f, numel, stream_);
    } else {
      bc::fill_normal_f32(f32, std, seed * 1000003u + s.host_slot, numel, stream_);
    }
    bc::convert_f32_to_bf16(f32, weights_.as<bf16>() + s.offset, numel, stream_);
  }
  if (master_.bytes()) {
    check(cudaMemsetAsync(m_.as<float>(), 0, m_.bytes(), stream_), "clearing AdamW's moments");
    check(cudaMemsetAsync(v_.as<float>(), 0, v_.bytes(), stream_), "clearing AdamW's moments");
  }
  check(cudaStreamSynchronize(stream_), "making random weights");
  host_stale_ = true;  // the host mirror is read back when asked for
  random_ = true;
}

CudaEngine::~CudaEngine() {
  if (stream_) {
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }
}

void CudaEngine::ensure_capacity(int64_t n_tokens, int64_t n_targets) {
  if (n_tokens <= cap_tokens_ && n_targets <= cap_targets_) return;
  // Grows to the largest batch seen (rounded up), so the steady state allocates nothing.
  cap_tokens_ = std::max(cap_tokens_, (n_tokens + 255) / 256 * 256);
  cap_targets_ = std::max(cap_targets_, (n_targets + 255) / 256 * 256);
  check(cudaStreamSynchronize(stream_), "growing the activation memory");
  workspace_.release();
  cuda::Arena count;  // a dry run of the same carving sizes the allocation
  cuda::carve_batch(count, cap_tokens_, cap_targets_);
  model_->carve(count, cap_tokens_, cap_targets_);
  workspace_.allocate(count.used(), fmt::format("activations of {} tokens", cap_tokens_).c_str());
  cuda::Arena arena(workspace_.as<void>());
  batch_ = cuda::carve_batch(arena, cap_tokens_, cap_targets_);
  model_->carve(arena, cap_tokens_, cap_targets_);
  has_loaded_ = false;
}

void CudaEngine::load_batch(const Batch& b) {
  if (has_loaded_ && b.tokens == loaded_.tokens && b.positions == loaded_.positions &&
      b.visible_until == loaded_.visible_until && b.target_rows == loaded_.target_rows &&
      b.target_ids == loaded_.target_ids)
    return;
  check_batch(b, config_.vocab_size);
  ensure_capacity(cuda::device_tokens(b), b.n_targets());
  cuda::upload_batch(b, batch_, staging_, stream_);
  model_->prepare(batch_, stream_);
  loaded_ = b;
  has_loaded_ = true;
}

std::vector<ResponseLogp> CudaEngine::score_with(const Batch& b, const bf16* weights) {
  load_batch(b);
  const float* logp = model_->forward(batch_, weights, stream_);
  const auto nt = static_cast<size_t>(b.n_targets());
  results_.reserve(2 * nt * sizeof(float) + 64);  // log-probs, then logit sums
  check(cudaMemcpyAsync(results_.as<float>(), logp, nt * sizeof(float), cudaMemcpyDeviceToHost, stream_),
        "copying log-probs from the GPU");
  check(cudaMemcpyAsync(results_.as<float>() + nt, model_->logit_sums(), nt * sizeof(float), cudaMemcpyDeviceToHost,
                        stream_),
        "copying logit sums from the GPU");
  check(cudaStreamSynchronize(stream_), "the forward pass");
  return sum_responses<float>(b, std::span<const float>(results_.as<float>(), nt),
                              std::span<const float>(results_.as<float>() + nt, nt));
}

std::vector<ResponseLogp> CudaEngine::score_policy(const Batch& b) { return score_with(b, weights_.as<bf16>()); }

std::vector<ResponseLogp> CudaEngine::score_reference(const Batch& b) {
  if (!has_reference()) fail("internal: this engine was built without a reference model");
  return score_with(b, reference_.as<bf16>());
}

void CudaEngine::require(EngineState needed, const char* what) const {
  const bool ok = needed == EngineState::gradients ? grads_.bytes() > 0 : master_.bytes() > 0;
  if (!ok) fail("internal: {} needs an engine built with the {} state", what,
                needed == EngineState::gradients ? "gradients" : "training");
}

void CudaEngine::zero_grad() {
  require(EngineState::gradients, "zero_grad");
  check(cudaMemsetAsync(grads_.as<float>(), 0, grads_.bytes(), stream_), "zeroing the gradients");
}

void CudaEngine::backprop(const Batch& b, std::span<const double> d_response) {
  require(EngineState::gradients, "backprop");
  if (!has_loaded_ || b.tokens != loaded_.tokens) fail("internal: backprop of a batch that was not scored last");
  const auto d_logp = spread_response_gradients<float>(b, d_response);
  // The forward's result copy finished (score_with synchronised), so results_ is free.
  results_.reserve(d_logp.size() * sizeof(float) + 64);
  std::memcpy(results_.as<float>(), d_logp.data(), d_logp.size() * sizeof(float));
  check(cudaMemcpyAsync(batch_.d_logp, results_.as<float>(), d_logp.size() * sizeof(float), cudaMemcpyHostToDevice,
                        stream_), "copying gradients to the GPU");
  model_->backward(batch_, weights_.as<bf16>(), grads_.as<float>(), stream_);
  check(cudaStreamSynchronize(stream_), "the backward pass");  // results_ is reused by the next forward
}

const ParameterSet<float>& CudaEngine::gradients() {
  require(EngineState::gradients, "gradients");
  if (!host_grads_) host_grads_ = std::make_unique<ParameterSet<float>>(config_);
  check(cudaStreamSynchronize(stream_), "finishing the backward");
  download(layout_, grads_.as<float>(), *host_grads_);
  return *host_grads_;
}

double CudaEngine::optimizer_step(double lr) {
  require(EngineState::training, "optimizer_step");
  const auto n = static_cast<int64_t>(layout_.total);
  ++steps_;
  {
    const auto timed = model_->timer().scope(cuda::OpKind::optimizer, stream_);
    bc::global_grad_norm(grads_.as<float>(), n, norm_partials_.as<double>(), grad_norm_.as<double>(), stream_);
    bc::AdamWStep p;
    p.master = master_.as<float>(), p.weights = weights_.as<bf16>(), p.grads = grads_.as<float>();
    p.m = m_.as<float>(), p.v = v_.as<float>(), p.n = n;
    p.slot_offsets = slot_offsets_.as<int64_t>(), p.slot_decay = slot_decay_.as<uint8_t>();
    p.n_slots = static_cast<int64_t>(layout_.slots.size());
    p.grad_norm = grad_norm_.as<double>(), p.max_norm = adamw_options_.max_grad_norm;
    p.lr = lr, p.beta1 = adamw_options_.beta1, p.beta2 = adamw_options_.beta2, p.eps = adamw_options_.eps;
    p.weight_decay = adamw_options_.weight_decay, p.step = steps_;
    bc::adamw_step(p, stream_);
  }
  double norm = 0;
  check(cudaMemcpyAsync(&norm, grad_norm_.as<double>(), sizeof(double), cudaMemcpyDeviceToHost, stream_),
        "reading the gradient norm");
  check(cudaStreamSynchronize(stream_), "the optimizer step");
  host_stale_ = true;
  return norm;
}

void CudaEngine::download_state() {
  if (random_ && !master_.bytes()) fail("internal: a random model's weights are on the GPU only (training state needed)");
  if (!host_stale_ || !master_.bytes()) return;
  check(cudaStreamSynchronize(stream_), "finishing the step");
  download(layout_, master_.as<float>(), host_master_);
  download(layout_, m_.as<float>(), host_optimizer_.first_moment());
  download(layout_, v_.as<float>(), host_optimizer_.second_moment());
  host_optimizer_.set_steps(steps_);
  host_stale_ = false;
}

ParameterSet<float>& CudaEngine::master_weights() {
  download_state();
  return host_master_;
}

AdamW& CudaEngine::optimizer() {
  download_state();
  return host_optimizer_;
}

void CudaEngine::upload_state() {
  check(cudaStreamSynchronize(stream_), "finishing the step");
  upload(layout_, host_master_, master_.as<float>());
  upload(layout_, host_optimizer_.first_moment(), m_.as<float>());
  upload(layout_, host_optimizer_.second_moment(), v_.as<float>());
  steps_ = host_optimizer_.steps();
  bc::convert_f32_to_bf16(master_.as<float>(), weights_.as<bf16>(), static_cast<int64_t>(layout_.total), stream_);
  check(cudaStreamSynchronize(stream_), "copying the training state to the GPU");
  host_stale_ = false;
}

void CudaEngine::state_changed() {
  require(EngineState::training, "state_changed");
  upload_state();
}

void CudaEngine::set_op_timing(bool on) { model_->timer().enable(on); }

std::vector<std::pair<std::string, double>> CudaEngine::take_op_seconds() {
  check(cudaStreamSynchronize(stream_), "finishing the step");
  const auto seconds = model_->timer().take();
  std::vector<std::pair<std::string, double>> out;
  for (size_t k = 0; k < cuda::kOpKinds; ++k) out.emplace_back(cuda::kOpKindNames[k], seconds[k]);
  return out;
}

double CudaEngine::device_memory_gib() const {
  size_t free = 0, total = 0;
  check(cudaMemGetInfo(&free, &total), "reading the GPU's memory");
  return static_cast<double>(total - free) / 1073741824.0;
}

}  // namespace duet::engine
