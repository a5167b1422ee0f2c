#include "engine/cuda_engine.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "backend/cuda/adamw.hpp"
#include "backend/cuda/attention.hpp"
#include "backend/cuda/layers.hpp"
#include "backend/cuda/target_logprobs.hpp"
#include "engine/lora_files.hpp"
#include "engine/memory_estimate.hpp"
#include "engine/scoring.hpp"
#include "util/error.hpp"

namespace duet::engine {

namespace bc = duet::backend::cuda;
using bc::bf16;
using bc::check;

namespace {

// Why this build's kernels cannot run on the selected GPU (a data-parallel
// rank's, set by its communicator, else GPU 0), as one line; empty when they
// can. Asks without failing, so that --device auto can ask too.
std::string unusable_gpu(int& device) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    cudaGetLastError();  // clear the sticky "no device" so later calls report their own errors
    return fmt::format("--device cuda: no CUDA GPU is visible ({}); run on a machine with an NVIDIA GPU or use "
                       "--device cpu",
                       status == cudaSuccess ? "none found" : cudaGetErrorString(status));
  }
  cudaDeviceProp prop{};
  for (const auto& [error, what] : {std::pair{cudaGetDevice(&device), "reading the selected GPU"},
                                    std::pair{cudaGetDeviceProperties(&prop, device), "reading the GPU's properties"}})
    if (error != cudaSuccess)
      return fmt::format("{}: CUDA error {}: {}", what, cudaGetErrorName(error), cudaGetErrorString(error));
  if (prop.major != 9)
    return fmt::format("--device cuda: {} has compute capability {}.{}, but this build's kernels need a Hopper GPU "
                       "(sm_90a: H100, H200); use --device cpu",
                       prop.name, prop.major, prop.minor);
  return "";
}

void select_device() {
  int device = 0;
  if (const std::string why = unusable_gpu(device); !why.empty()) fail("{}", why);
  check(cudaSetDevice(device), "selecting the GPU");
}

bool sharded(const EngineOptions& o) { return cuda::shards_optimizer(o.zero_stage, o.state, o.lora.has_value()); }
bool sharded_weights(const EngineOptions& o) { return cuda::shards_weights(o.zero_stage, o.state, o.lora.has_value()); }
EngineState model_state(const EngineOptions& o) { return cuda::model_state(o.zero_stage, o.state, o.lora.has_value()); }

// Before anything is allocated: what this engine's data parallelism does not do.
void check_data_parallel(const EngineOptions& o) {
  if (o.ranks < 1 || o.rank < 0 || o.rank >= o.ranks) fail("internal: rank {} of {} ranks", o.rank, o.ranks);
  cuda::check_zero_stage(o.zero_stage, o.lora.has_value());
}

}  // namespace

bool cuda_engine_runs_here() {
  int device = 0;
  return unusable_gpu(device).empty();
}

CudaEngine::CudaEngine(const EngineOptions& o)
    : config_((select_device(), o.random_model ? *o.random_model : model::load_config(o.model))),
      lora_(o.lora),
      lora_seed_(o.lora_seed),
      rank_(o.rank),
      ranks_(o.ranks),
      zero_stage_(o.zero_stage),
      adamw_(o.adamw) {
  check_data_parallel(o);
  backend::AttentionShape shape;
  shape.n_q_heads = config_.num_attention_heads, shape.n_kv_heads = config_.num_key_value_heads;
  shape.head_dim = config_.head_dim;
  bc::attention_check_supported(shape);
  if (lora_) {
    lora_->validate();
    if (!o.reference.empty() || o.reference_is_start)
      fail("internal: with LoRA the reference is the base model (reference_is_base), not a second copy");
  } else if (o.reference_is_base || !o.adapter.empty()) {
    fail("internal: adapter options without a LoRA config");
  }
  check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "creating a CUDA stream");
  model_params_ = std::make_unique<cuda::DeviceParameters>(DeviceLayout(config_), layout_parameters(config_),
                                                           model_state(o), o.adamw, !sharded_weights(o));
  const DeviceLayout& layout = model_params_->layout();
  model_ = std::make_unique<cuda::DeviceTransformer>(config_, layout, o.gradient_checkpointing);
  if (sharded(o)) shard_ = std::make_unique<cuda::DeviceShard>(layout, o.rank, o.ranks, o.adamw);
  if (sharded(o) && o.zero_stage >= 2)
    grads_ = std::make_unique<cuda::ShardedGradients>(config_, layout, o.rank, o.ranks);
  load_policy(o);
  load_reference(o);
  if (lora_) load_adapter(o);
  if (trained().has_grads() || grads_) zero_grad();
  check(cudaStreamSynchronize(stream_), "loading the model");
}

// ZeRO-3: the policy's and the reference's bf16 weights sharded, two gathered layers for both.
std::unique_ptr<cuda::WeightSource> CudaEngine::make_sharded(const char* what, cuda::ShardedWeights*& alias) {
  if (!gathered_) gathered_ = std::make_shared<cuda::LayerBuffers>(config_, model_params_->layout());
  auto w = std::make_unique<cuda::ShardedWeights>(config_, model_params_->layout(), rank_, ranks_, gathered_, what);
  alias = w.get();
  return w;
}

// The policy: random (on the device) or the model folder's weights, into the
// master and bf16 weights, or this rank's pieces of them (ZeRO).
void CudaEngine::load_policy(const EngineOptions& o) {
  const DeviceLayout& layout = model_params_->layout();
  if (sharded_weights(o))
    policy_weights_ = make_sharded("the model", sharded_policy_);
  else
    policy_weights_ = std::make_unique<cuda::FlatWeights>(model_params_->weights());
  if (o.random_model) {
    random_weights(o.random_seed, static_cast<float>(o.random_std));
    return;
  }
  ParameterSet<float>& host = model_params_->host(stream_);
  load_weights(host, o.model);
  if (sharded_policy_)
    sharded_policy_->load(layout, host, stream_);  // the whole outer tensors, this rank's pieces of the layers
  else
    model_params_->upload(stream_);  // master, bf16 weights from it, zero moments (or the bf16 weights alone)
  if (shard_) {  // ZeRO-1/2/3: the shard's master from the host, zero moments
    const size_t begin = shard_->begin(), n = shard_->end() - begin;
    const std::vector<float> zeros(n, 0.0f);
    shard_->load(host.values().subspan(begin, n), zeros, zeros, 0, piece_weights(), stream_);
  }
}

// The frozen reference in bf16: a copy of the starting policy or another
// model folder's weights (none under LoRA, whose reference is the base).
void CudaEngine::load_reference(const EngineOptions& o) {
  const size_t n = model_params_->numel();
  if (o.reference_is_start && sharded_policy_) {
    reference_weights_ = make_sharded("the reference model", sharded_reference_);
    sharded_reference_->copy_from(*sharded_policy_, stream_);
  } else if (o.reference_is_start) {
    reference_.allocate(n * sizeof(bf16), "the reference model");
    check(cudaMemcpyAsync(reference_.as<bf16>(), model_params_->weights(), n * sizeof(bf16),
                          cudaMemcpyDeviceToDevice, stream_),
          "copying the reference model");
  } else if (!o.reference.empty()) {
    ParameterSet<float> ref(config_);
    load_weights(ref, o.reference);
    if (sharded_policy_) {
      reference_weights_ = make_sharded("the reference model", sharded_reference_);
      sharded_reference_->load(model_params_->layout(), ref, stream_);
    } else {
      reference_.allocate(n * sizeof(bf16), "the reference model");
      cuda::upload_bf16(model_params_->layout(), ref, reference_.as<bf16>(), stream_);
    }
  }
  if (reference_.bytes() > 0) reference_weights_ = std::make_unique<cuda::FlatWeights>(reference_.as<bf16>());
}

// LoRA: the adapter (fresh from the seed or a saved one) is what trains.
void CudaEngine::load_adapter(const EngineOptions& o) {
  const auto slots = layout_adapter(config_, *lora_);
  adapter_ = std::make_unique<cuda::DeviceParameters>(DeviceLayout(slots), slots, o.state, o.adamw);
  ParameterSet<float>& a = adapter_->host(stream_);
  if (o.adapter.empty())
    init_adapter(a, o.lora_seed);
  else
    load_adapter_weights(o.adapter, a);
  adapter_->upload(stream_);
  model_->enable_lora(*lora_, adapter_->layout());
  reference_is_base_ = o.reference_is_base;
}

// Random weights made on the device (no host values): each tensor drawn in
// fp32 from its own stream of the seed, then rounded to bf16; the master
// weights keep the fp32 draws and the host mirror is filled on demand.
void CudaEngine::random_weights(uint64_t seed, float std) {
  cuda::DeviceParameters& P = *model_params_;
  const DeviceLayout& layout = P.layout();
  const auto host_slots = layout_parameters(config_);
  cuda::DeviceBuffer staging(P.trains() ? 0 : cuda::largest_tensor(layout) * sizeof(float), "making random weights");
  if (P.weights()) check(cudaMemsetAsync(P.weights(), 0, P.numel() * sizeof(bf16), stream_), "clearing the weights");
  P.clear_state(stream_);
  if (shard_) shard_->clear_moments(stream_);
  for (const auto& s : layout.slots) {
    const std::string& name = host_slots[s.host_slot].name;
    float* f32 = P.trains() ? P.master() + s.offset : staging.as<float>();
    const auto numel = static_cast<int64_t>(s.numel);
    if (name.ends_with("norm.weight")) {
      bc::fill_f32(f32, 1.0f, numel, stream_);
    } else if (name.ends_with(".bias")) {
      bc::fill_f32(f32, 0.0f, numel, stream_);
    } else {
      bc::fill_normal_f32(f32, std, seed * 1000003u + s.host_slot, numel, stream_);
    }
    if (sharded_policy_)
      sharded_policy_->set_tensor(s, f32, stream_);
    else
      bc::convert_f32_to_bf16(f32, P.weights() + s.offset, numel, stream_);
    if (shard_) shard_->load_tensor(s, f32, stream_);
  }
  check(cudaStreamSynchronize(stream_), "making random weights");
  if (shard_)
    host_master_stale_ = true;  // gathered from the shards when asked for
  else
    P.device_changed();  // the host mirror is read back when asked for
}

CudaEngine::~CudaEngine() {
  if (stream_) {
    cudaStreamSynchronize(stream_);
    cudaStreamDestroy(stream_);
  }
}

void CudaEngine::reserve(int64_t tokens, int64_t targets) {
  tune_products(tokens, targets);  // first: its scratch is freed before the activations are allocated
  ensure_capacity(tokens, targets);
}

namespace {

// A count of candidates from the environment (0 to 64), or `fallback` when unset:
// DUET_GEMM_AUTOTUNE, how many of cuBLASLt's algorithms tuning times per
// product (default 16; 0 or 1: the heuristic's first, no timing);
// DUET_GEMM_REFINE, how many of each bucket's fastest refinement times again at
// every token count (default 3; 0: the bucket's choice serves all its counts).
int candidates_from_env(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::clamp(std::atoi(v), 0, 64) : fallback;
}

// The products of rows of every bucket's largest token and target count up
// to the largest row (Gemm tunes one choice per bucket).
std::vector<backend::cuda::GemmParams> tuning_shapes(const cuda::DeviceTransformer& model,
                                                     const backend::cuda::Gemm& gemm, int64_t tokens,
                                                     int64_t targets, bool backward, bool weight_grads) {
  std::vector<backend::cuda::GemmParams> shapes;
  for (const int64_t n : gemm.buckets_up_to(std::max(tokens, targets)))
    for (const auto& p : model.products(std::min(n, tokens), std::min(n, targets), backward, weight_grads))
      shapes.push_back(p);
  return shapes;
}

// The products of every row a run can bring: rows are multiples of 64 tokens
// on the device (device_tokens) and the LM head runs on its targets rounded up
// to 64 too (target_logprobs_padded_targets), so each count up to the largest
// row is one of these.
std::vector<backend::cuda::GemmParams> exact_shapes(const cuda::DeviceTransformer& model, int64_t tokens,
                                                    int64_t targets, bool backward, bool weight_grads) {
  std::vector<backend::cuda::GemmParams> shapes;
  const int64_t padded_targets = backend::cuda::target_logprobs_padded_targets(targets);
  for (int64_t n = 64; n <= std::max(tokens, padded_targets); n += 64)
    for (const auto& p :
         model.products(n <= tokens ? n : 0, n <= padded_targets ? n : 0, backward, weight_grads))
      shapes.push_back(p);
  return shapes;
}

}  // namespace

void CudaEngine::tune_products(int64_t tokens, int64_t targets) {
  const int candidates = candidates_from_env("DUET_GEMM_AUTOTUNE", 16);
  const int keep = candidates_from_env("DUET_GEMM_REFINE", 3);
  if (candidates < 2 || tokens <= 0) return;
  tokens = cuda::device_tokens_at_most(tokens);
  backend::cuda::Gemm& gemm = model_->gemm();
  const bool backward = trained().has_grads() || grads_;
  const auto tune_here = [&] {
    const bool weight_grads = backward && !adapter_;
    if (!gemm.tune(tuning_shapes(*model_, gemm, tokens, targets, backward, weight_grads), candidates, stream_) ||
        !gemm.refine(exact_shapes(*model_, tokens, targets, backward, weight_grads), keep, stream_))
      std::fprintf(stderr, "duet: the matrix products are not tuned (no GPU memory free for the tuning's scratch "
                           "operands): cuBLASLt's heuristic chooses their algorithms\n");
  };
  if (comm_ && comm_->size() > 1) {  // every rank computes with rank 0's choices
    std::string text;
    if (comm_->rank() == 0) {
      tune_here();
      text = gemm.algorithms();
    }
    uint64_t bytes = text.size();
    comm_->broadcast(&bytes, sizeof(bytes), 0);
    text.resize(bytes);
    comm_->broadcast(text.data(), bytes, 0);
    if (comm_->rank() != 0 && !gemm.use_algorithms(text))
      fail("rank {}: rank 0's GPU or cuBLASLt differs from this rank's ({}); run every rank on one kind of GPU, or "
           "set DUET_GEMM_AUTOTUNE=0",
           comm_->rank(), text.substr(0, text.find('\n')));
    return;
  }
  tune_here();
}

std::string CudaEngine::product_algorithms() const { return model_->gemm().algorithms(); }

bool CudaEngine::use_product_algorithms(const std::string& text) { return model_->gemm().use_algorithms(text); }

int64_t CudaEngine::untuned_products() const { return model_->gemm().untuned_runs(); }

void CudaEngine::ensure_capacity(int64_t n_tokens, int64_t n_targets) {
  if (n_tokens <= cap_tokens_ && n_targets <= cap_targets_) return;
  // Grows to the largest batch seen (rounded up), so the steady state allocates nothing.
  const int64_t tokens = std::max(cap_tokens_, cuda::round_capacity(n_tokens));
  const int64_t targets = std::max(cap_targets_, cuda::round_capacity(n_targets));
  check(cudaStreamSynchronize(stream_), "growing the activation memory");
  // Nothing is carved until the allocation succeeds: after an out-of-memory
  // error a later, smaller batch carves afresh (duet bench goes on).
  cap_tokens_ = cap_targets_ = 0;
  has_loaded_ = false;
  workspace_.release();
  const size_t bytes = cuda::workspace_bytes(*model_, tokens, targets);  // a dry run of the carving below
  try {
    workspace_.allocate(bytes, fmt::format("activations of {} tokens", tokens).c_str());
  } catch (const OutOfMemory& e) {
    throw OutOfMemory(fmt::format("{}; rows of up to {} tokens fit in what is free", e.what(),
                                  longest_row_in_free_memory()));
  }
  cuda::Arena arena(workspace_.as<void>());
  batch_ = cuda::carve_batch(arena, tokens, targets);
  model_->carve(arena, tokens, targets);
  cap_tokens_ = tokens, cap_targets_ = targets;
}

int64_t CudaEngine::longest_row_in_free_memory() {
  size_t free = 0, total = 0;
  if (cudaMemGetInfo(&free, &total) != cudaSuccess) return 0;
  return longest_fitting_row([&](int64_t n) { return cuda::workspace_bytes(*model_, n, n) <= free; });
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

std::vector<ResponseLogp> CudaEngine::score_with(const Batch& b, cuda::WeightSource& weights,
                                                 const cuda::DeviceLora::Pass* lora) {
  load_batch(b);
  const float* logp = model_->forward(batch_, weights, stream_, lora);
  weights.finish_pass();
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

cuda::DeviceLora::Pass CudaEngine::adapter_pass(const Batch& b, bool with_grads) const {
  cuda::DeviceLora::Pass pass;
  pass.weights = adapter_->weights();
  pass.grads = with_grads ? adapter_->grads() : nullptr;
  pass.training = training_;
  // As the CPU engine: the same (seed, optimizer step, batch) gives the same mask.
  if (training_ && lora_->dropout > 0) pass.dropout_key = lora_dropout_key(lora_seed_, adapter_->steps(), b);
  return pass;
}

std::vector<ResponseLogp> CudaEngine::score_policy(const Batch& b) {
  if (!adapter_) return score_with(b, *policy_weights_, nullptr);
  const auto pass = adapter_pass(b, false);
  return score_with(b, *policy_weights_, &pass);
}

std::vector<ResponseLogp> CudaEngine::score_reference(const Batch& b) {
  if (reference_is_base_) return score_with(b, *policy_weights_, nullptr);  // the adapter off
  if (!has_reference()) fail("internal: this engine was built without a reference model");
  return score_with(b, *reference_weights_, nullptr);
}

void CudaEngine::score_empty(bool reference) {
  cuda::ShardedWeights* w = reference ? sharded_reference_ : sharded_policy_;
  if (!w) return;  // nothing gathered: the weights are whole on every rank
  model_->pass_without_rows(*w, nullptr, false, stream_);
  w->finish_pass();
  check(cudaStreamSynchronize(stream_), "the forward pass");
}

void CudaEngine::require(EngineState needed, const char* what) const {
  const bool ok = needed == EngineState::gradients ? trained().has_grads() || grads_ : trained().trains() || shard_;
  if (!ok) fail("internal: {} needs an engine built with the {} state", what,
                needed == EngineState::gradients ? "gradients" : "training");
}

void CudaEngine::zero_grad() {
  require(EngineState::gradients, "zero_grad");
  if (grads_)
    grads_->zero(stream_);
  else
    trained().zero_grad(stream_);
  if (reduced_) reduced_->reset();
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
  if (adapter_) {
    const auto pass = adapter_pass(b, true);
    model_->backward(batch_, *policy_weights_, nullptr, stream_, &pass);
  } else if (grads_) {  // ZeRO-2/3: each layer's gradients reduced into the shards as the backward leaves it
    if (!grads_->has_communicator()) fail("internal: backprop of a ZeRO-2/3 CUDA engine before enable_data_parallel");
    model_->backward(batch_, *policy_weights_, grads_.get(), stream_);
    grads_->finish_backward();
    policy_weights_->finish_pass();
  } else if (reduced_) {  // data parallel at ZeRO-0/1: the step's last backward sums each layer as it leaves it
    model_->backward(batch_, *policy_weights_, reduced_.get(), stream_);
    reduced_->finish_backward();
  } else {
    cuda::FlatGradients flat(model_params_->grads());
    model_->backward(batch_, *policy_weights_, &flat, stream_);
  }
  check(cudaStreamSynchronize(stream_), "the backward pass");  // results_ is reused by the next forward
}

void CudaEngine::mark_last_backprop() {
  if (reduced_) reduced_->arm();
}

void CudaEngine::backprop_empty() {
  if (reduced_ && reduced_->armed()) {  // the others' last backward sums each layer: so does this rank's
    model_->pass_without_rows(*policy_weights_, reduced_.get(), true, stream_);
    reduced_->finish_backward();
    check(cudaStreamSynchronize(stream_), "the backward pass");
    return;
  }
  if (!grads_) return;  // the gradients are summed over the ranks at the step
  if (!grads_->has_communicator()) fail("internal: backprop of a ZeRO-2/3 CUDA engine before enable_data_parallel");
  model_->pass_without_rows(*policy_weights_, grads_.get(), true, stream_);
  grads_->finish_backward();
  policy_weights_->finish_pass();
  check(cudaStreamSynchronize(stream_), "the backward pass");
}

const ParameterSet<float>& CudaEngine::gradients() {
  require(EngineState::gradients, "gradients");
  if (reduced_ && reduced_->partly_summed()) reduced_->finish_step(stream_);  // the layers are summed: the rest too
  if (!grads_) return trained().host_gradients(stream_);
  // ZeRO-2: this rank's shard of the summed gradient, in its host range (the whole gradient with one rank).
  grads_->finish_step(stream_);
  if (!host_grads_) host_grads_ = std::make_unique<ParameterSet<float>>(config_);
  auto values = host_grads_->values();
  std::fill(values.begin(), values.end(), 0.0f);
  check(cudaStreamSynchronize(stream_), "finishing the backward");
  check(cudaMemcpy(values.data() + shard_->begin(), grads_->shard(), grads_->shard_size() * sizeof(float),
                   cudaMemcpyDeviceToHost),
        "copying the gradients' shard from the GPU");
  return *host_grads_;
}

double CudaEngine::optimizer_step(double lr) {
  require(EngineState::training, "optimizer_step");
  const auto timed = model_->timer().scope(cuda::OpKind::optimizer, stream_);
  if (shard_) sharded_comm("optimizer_step");
  if (grads_) {  // ZeRO-2/3: the layers are in the shard already, the outer bucket joins them
    grads_->finish_step(stream_);
    const double norm = shard_->step_sharded(lr, grads_->shard(), *comm_, piece_weights(), stream_);
    share_weights();
    host_master_stale_ = true;
    return norm;
  }
  if (reduced_) reduced_->finish_step(stream_);  // summed over the ranks (what the last backward has not summed)
  if (adapter_) sum_adapter_gradients();
  if (!shard_) return trained().step(lr, stream_);
  const double norm = shard_->step(lr, model_params_->grads(), piece_weights(), stream_);
  share_weights();
  host_master_stale_ = true;
  return norm;
}

// LoRA on several ranks: the adapter's gradients (megabytes) summed in one
// all-reduce before the step; every rank then takes the same step.
void CudaEngine::sum_adapter_gradients() {
  if (!comm_) return;  // one process
  check(cudaStreamSynchronize(stream_), "finishing the backward");  // NCCL's stream reads what it wrote
  comm_->all_reduce_sum(adapter_->grads(), adapter_->numel());
}

cuda::PieceWeights CudaEngine::piece_weights() const {
  if (!sharded_policy_) return cuda::full_weights(model_params_->weights());
  return [w = sharded_policy_](const ShardPiece& p) { return w->own(p); };
}

void CudaEngine::share_weights() {
  if (!sharded_policy_) return shard_->share_weights(*comm_, model_params_->weights(), stream_);
  sharded_policy_->changed();  // its next gathers read the updated shards
  sharded_policy_->share_outer(stream_);
}

dist::Communicator& CudaEngine::sharded_comm(const char* what) const {
  if (!comm_ || !sharded_) fail("internal: {} of a sharded (ZeRO-1/2/3) CUDA engine before enable_data_parallel", what);
  return *comm_;
}

void CudaEngine::enable_data_parallel(dist::Communicator& comm, int zero_stage) {
  // The shard was allocated at construction: the stage and ranks must be those it was built for.
  if (zero_stage != zero_stage_)
    fail("internal: ZeRO stage {} enabled on a CUDA engine built for stage {} (EngineOptions::zero_stage)", zero_stage,
         zero_stage_);
  if (comm.rank() != rank_ || comm.size() != ranks_)
    fail("internal: rank {} of {} enabled on a CUDA engine built for rank {} of {} (EngineOptions)", comm.rank(),
         comm.size(), rank_, ranks_);
  if (comm.size() > 1 && comm.backend() != "nccl")
    fail("internal: the CUDA engine's ranks need the NCCL communicator (got {})", comm.backend());
  comm_ = &comm;
  if (adapter_) return;  // LoRA (stage 0, check_zero_stage): the adapter's gradients are summed at the step
  if (grads_) grads_->set_communicator(comm);
  if (!grads_ && trained().has_grads()) {  // ZeRO-0/1: the whole gradient, summed over the ranks
    reduced_ = std::make_unique<cuda::ReducedGradients>(config_, model_params_->layout(), trained().grads());
    reduced_->set_communicator(comm);
  }
  for (cuda::ShardedWeights* w : {sharded_policy_, sharded_reference_})
    if (w) w->set_communicator(comm);
  if (!shard_) return;
  sharded_ = std::make_unique<ShardedAdamW>(comm, zero_stage, layout_parameters(config_), adamw_);
  if (sharded_->shard_begin() != shard_->begin() || sharded_->shard_end() != shard_->end())
    fail("internal: the CUDA engine's shard [{}, {}) is not the checkpoint's [{}, {})", shard_->begin(), shard_->end(),
         sharded_->shard_begin(), sharded_->shard_end());
}

// ZeRO-1 after a step: each rank's master range to every rank's host, this
// rank's moments into the host view. Skipped while a resume's values wait
// on the host for state_changed().
void CudaEngine::gather_weights() {
  if (!shard_) return;
  dist::Communicator& comm = sharded_comm("gather_weights");
  if (!host_master_stale_ || !sharded_->weights_current()) return;
  shard_->download(comm, model_params_->host(stream_), sharded_->exp_avg(), sharded_->exp_avg_sq(), stream_);
  sharded_->set_steps(shard_->steps());
  host_master_stale_ = false;
}

ParameterSet<float>& CudaEngine::master_weights() {
  if (host_master_stale_)
    fail("internal: a sharded CUDA engine's master weights reach the host through gather_weights() (collective)");
  return trained().host(stream_);
}

AdamW& CudaEngine::optimizer() {
  if (shard_) fail("internal: a sharded engine's optimizer state is in sharded_optimizer()");
  return trained().host_optimizer(stream_);
}

// ZeRO-1 (a resume): this rank's range of the host master and the host view's
// moments and step count to the device, then every owner's bf16 pieces.
void CudaEngine::state_changed() {
  require(EngineState::training, "state_changed");
  if (!shard_) return trained().upload(stream_);
  sharded_comm("state_changed");
  if (host_master_stale_ && sharded_->weights_current())
    fail("internal: state_changed() on a sharded CUDA engine whose host state was not gathered");
  const size_t begin = shard_->begin(), n = shard_->end() - begin;
  shard_->load(model_params_->host(stream_).values().subspan(begin, n), sharded_->exp_avg(), sharded_->exp_avg_sq(),
               sharded_->steps(), piece_weights(), stream_);
  share_weights();
  sharded_->mark_weights_current();
  host_master_stale_ = ranks_ > 1;  // the other ranks' ranges on this host are the ones before the resume
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
