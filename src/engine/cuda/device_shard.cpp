#include "engine/cuda/device_shard.hpp"

#include <algorithm>

#include "backend/cuda/adamw.hpp"
#include "backend/cuda/layers.hpp"
#include "engine/cuda/device_parameters.hpp"
#include "util/error.hpp"

namespace duet::engine::cuda {

namespace bc = duet::backend::cuda;
using bc::check;

void check_zero_stage(int zero_stage, bool lora) {
  if (zero_stage < 0 || zero_stage > 3) fail("--zero-stage {}: must be 0, 1, 2 or 3", zero_stage);
  if (zero_stage > 0 && lora)
    fail("--use-peft with --zero-stage {}: the CUDA engine shards no LoRA adapter (a few MB of AdamW state per rank); "
         "leave --zero-stage out (stage 0: the ranks sum the adapter's gradients)",
         zero_stage);
}

bool shards_optimizer(int zero_stage, EngineState state, bool lora) {
  return zero_stage >= 1 && zero_stage <= 3 && state == EngineState::training && !lora;
}

bool shards_weights(int zero_stage, EngineState state, bool lora) {
  return zero_stage == 3 && shards_optimizer(zero_stage, state, lora);
}

EngineState model_state(int zero_stage, EngineState state, bool lora) {
  if (lora) return EngineState::scoring;
  if (!shards_optimizer(zero_stage, state, lora)) return state;
  return zero_stage >= 2 ? EngineState::scoring : EngineState::gradients;
}

PieceWeights full_weights(bf16* weights) {
  return [weights](const ShardPiece& p) { return weights + p.device_offset; };
}

size_t largest_shard(size_t host_elements, int ranks) { return dist::ShardLayout(host_elements, ranks).size(0); }

size_t gather_staging_bytes(size_t host_elements, int ranks) {
  return ranks > 1 ? sizeof(float) * std::min(kGatherChunk, largest_shard(host_elements, ranks)) : 0;
}

DeviceShard::DeviceShard(const DeviceLayout& layout, int rank, int ranks, const AdamWOptions& adamw)
    : adamw_(adamw), rank_(rank), cut_(host_numel(layout), ranks), total_(layout.total) {
  if (ranks < 1 || rank < 0 || rank >= ranks) fail("internal: rank {} of {} ranks", rank, ranks);
  for (int r = 0; r < ranks; ++r) pieces_.push_back(shard_pieces(layout, cut_.begin(r), cut_.end(r)));
  const size_t n = cut_.size(rank_);
  master_.allocate(n * sizeof(float), "this rank's shard of the fp32 master weights");
  m_.allocate(n * sizeof(float), "this rank's shard of AdamW's first moments");
  v_.allocate(n * sizeof(float), "this rank's shard of AdamW's second moments");
  norm_partials_.allocate(static_cast<size_t>(bc::grad_norm_partials(static_cast<int64_t>(total_))) * sizeof(double),
                          "the gradient norm");
  grad_norm_.allocate(sizeof(double), "the gradient norm");
  const auto& mine = pieces_[static_cast<size_t>(rank_)];
  std::vector<int64_t> bounds;
  std::vector<uint8_t> decay;
  for (const ShardPiece& p : mine) {
    bounds.push_back(0), bounds.push_back(static_cast<int64_t>(p.numel));
    decay.push_back(p.decay);
  }
  if (mine.empty()) return;  // a rank past the last element (more ranks than elements)
  piece_bounds_.assign(bounds.data(), bounds.size() * sizeof(int64_t), "the shard's piece table");
  piece_decay_.assign(decay.data(), decay.size(), "the shard's piece table");
}

void DeviceShard::load(std::span<const float> master, std::span<const float> exp_avg,
                       std::span<const float> exp_avg_sq, int64_t steps, const PieceWeights& weights,
                       cudaStream_t s) {
  const size_t n = end() - begin();
  if (master.size() != n || exp_avg.size() != n || exp_avg_sq.size() != n)
    fail("internal: a shard of {} elements loaded from {}, {} and {}", n, master.size(), exp_avg.size(),
         exp_avg_sq.size());
  check(cudaStreamSynchronize(s), "finishing the step");
  if (n == 0) return;  // more ranks than elements
  check(cudaMemcpy(master_.as<float>(), master.data(), n * sizeof(float), cudaMemcpyHostToDevice),
        "copying the master weights' shard to the GPU");
  check(cudaMemcpy(m_.as<float>(), exp_avg.data(), n * sizeof(float), cudaMemcpyHostToDevice),
        "copying AdamW's shard to the GPU");
  check(cudaMemcpy(v_.as<float>(), exp_avg_sq.data(), n * sizeof(float), cudaMemcpyHostToDevice),
        "copying AdamW's shard to the GPU");
  steps_ = steps;
  for (const ShardPiece& p : pieces_[static_cast<size_t>(rank_)])
    bc::convert_f32_to_bf16(master_.as<float>() + p.shard_offset, weights(p),
                            static_cast<int64_t>(p.numel), s);
  check(cudaStreamSynchronize(s), "copying the training state to the GPU");
}

void DeviceShard::load_tensor(const DeviceSlot& slot, const float* values, cudaStream_t s) {
  for (const ShardPiece& p : pieces_[static_cast<size_t>(rank_)]) {
    if (p.device_offset < slot.offset || p.device_offset >= slot.offset + slot.numel) continue;
    check(cudaMemcpyAsync(master_.as<float>() + p.shard_offset, values + (p.device_offset - slot.offset),
                          p.numel * sizeof(float), cudaMemcpyDeviceToDevice, s),
          "keeping the master weights' shard");
  }
}

void DeviceShard::clear_moments(cudaStream_t s) {
  check(cudaMemsetAsync(m_.as<float>(), 0, m_.bytes(), s), "clearing AdamW's moments");
  check(cudaMemsetAsync(v_.as<float>(), 0, v_.bytes(), s), "clearing AdamW's moments");
  steps_ = 0;
}

double DeviceShard::step(double lr, const float* grads, const PieceWeights& weights, cudaStream_t s) {
  // All ranks hold the same all-reduced gradient: its norm as on one GPU (same partition, same bits).
  bc::global_grad_norm(grads, static_cast<int64_t>(total_), norm_partials_.as<double>(), grad_norm_.as<double>(), s);
  return update(lr, [&](const ShardPiece& p) { return grads + p.device_offset; }, weights, s);
}

double DeviceShard::step_sharded(double lr, const float* shard_grads, dist::Communicator& comm,
                                 const PieceWeights& weights, cudaStream_t s) {
  // Σ g² of this shard (in double), summed over the ranks, then its square root.
  bc::grad_sum_squares(shard_grads, static_cast<int64_t>(end() - begin()), norm_partials_.as<double>(),
                       grad_norm_.as<double>(), s);
  check(cudaStreamSynchronize(s), "the gradient norm");  // the collective runs on its own stream
  comm.all_reduce_sum(grad_norm_.as<double>(), 1);       // one rank: nothing (device memory, in place)
  bc::norm_from_sum_squares(grad_norm_.as<double>(), s);
  return update(lr, [&](const ShardPiece& p) { return shard_grads + p.shard_offset; }, weights, s);
}

template <typename GradsOf>
double DeviceShard::update(double lr, GradsOf&& grads_of, const PieceWeights& weights, cudaStream_t s) {
  ++steps_;
  const auto& mine = pieces_[static_cast<size_t>(rank_)];
  for (size_t i = 0; i < mine.size(); ++i) {
    const ShardPiece& piece = mine[i];
    bc::AdamWStep p = adamw_scalars(adamw_, lr, steps_, grad_norm_.as<double>());
    p.master = master_.as<float>() + piece.shard_offset, p.m = m_.as<float>() + piece.shard_offset;
    p.v = v_.as<float>() + piece.shard_offset;
    p.weights = weights(piece), p.grads = grads_of(piece);
    p.n = static_cast<int64_t>(piece.numel);
    p.slot_offsets = piece_bounds_.as<int64_t>() + 2 * i, p.slot_decay = piece_decay_.as<uint8_t>() + i;
    p.n_slots = 1;
    bc::adamw_step(p, s);
  }
  return finish_step(grad_norm_.as<double>(), s);
}

// One broadcast per piece (a tensor's part of a shard: about one per tensor
// and rank boundary, ~300 at 8B), all in one NCCL group: one launch, one wait.
void DeviceShard::share_weights(dist::Communicator& comm, bf16* weights, cudaStream_t s) const {
  check(cudaStreamSynchronize(s), "finishing the optimizer step");  // the collectives run on their own stream
  dist::DeviceCollectives* device = comm.device();
  if (!device) {
    if (comm.size() > 1) fail("internal: the CUDA engine's shards need the NCCL communicator (got {})", comm.backend());
    return;  // one rank holds every piece
  }
  std::vector<dist::DeviceCollectives::Part> parts;
  for (size_t r = 0; r < pieces_.size(); ++r)
    for (const ShardPiece& p : pieces_[r]) parts.push_back({weights + p.device_offset, p.numel * sizeof(bf16), static_cast<int>(r)});
  device->broadcast(parts);
  device->wait("broadcast of the updated bf16 weights");
}

void DeviceShard::download(dist::Communicator& comm, ParameterSet<float>& host, std::span<float> exp_avg,
                           std::span<float> exp_avg_sq, cudaStream_t s) const {
  const size_t n = end() - begin();
  if (host.values().size() != cut_.total || exp_avg.size() != n || exp_avg_sq.size() != n)
    fail("internal: a shard of {} elements downloaded into {}, {} and {}", n, host.values().size(), exp_avg.size(),
         exp_avg_sq.size());
  check(cudaStreamSynchronize(s), "finishing the step");
  if (n > 0) {
    check(cudaMemcpy(host.values().data() + begin(), master_.as<float>(), n * sizeof(float), cudaMemcpyDeviceToHost),
          "copying the master weights' shard from the GPU");
    check(cudaMemcpy(exp_avg.data(), m_.as<float>(), n * sizeof(float), cudaMemcpyDeviceToHost),
          "copying AdamW's shard from the GPU");
    check(cudaMemcpy(exp_avg_sq.data(), v_.as<float>(), n * sizeof(float), cudaMemcpyDeviceToHost),
          "copying AdamW's shard from the GPU");
  }
  // Each owner's master range to every rank (host buffers: the communicator
  // stages them on the device, so in pieces of at most kGatherChunk floats).
  for (int r = 0; r < cut_.ranks; ++r)
    for (size_t at = cut_.begin(r); at < cut_.end(r); at += kGatherChunk)
      comm.broadcast(host.values().data() + at, std::min(kGatherChunk, cut_.end(r) - at) * sizeof(float), r);
}

}  // namespace duet::engine::cuda
