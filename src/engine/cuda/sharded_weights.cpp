#include "engine/cuda/sharded_weights.hpp"

#include <fmt/format.h>


#include "backend/cuda/layers.hpp"
#include "engine/cuda/device_parameters.hpp"
#include "dist/shard_layout.hpp"
#include "util/error.hpp"

namespace duet::engine::cuda {

namespace bc = duet::backend::cuda;
using bc::check;

namespace {

size_t slot_elements(const GradientBuckets& b) { return (b.largest_layer() + 127) / 128 * 128; }  // 256-byte aligned

bool in_outer(const GradientBucket& outer, size_t device_offset) {
  for (const auto& [begin, end] : outer.ranges)
    if (device_offset >= begin && device_offset < end) return true;
  return false;
}

}  // namespace

ShardedWeightBytes sharded_weight_bytes(const model::ModelConfig& config, const DeviceLayout& layout, int ranks) {
  const GradientBuckets b = gradient_buckets(config, layout, 1);  // the buffers do not depend on the ranks
  return {sizeof(bf16) * dist::ShardLayout(host_numel(layout), ranks).size(0), sizeof(bf16) * b.outer.numel,
          sizeof(bf16) * 2 * slot_elements(b)};
}

LayerBuffers::LayerBuffers(const model::ModelConfig& config, const DeviceLayout& layout)
    : slot_elements_(slot_elements(gradient_buckets(config, layout, 1))) {
  buffers_.allocate(2 * slot_elements_ * sizeof(bf16), "ZeRO-3's two gathered layers (bf16)");
  // The device layout's padding between tensors is nobody's: zero once, never written.
  check(cudaMemset(buffers_.as<bf16>(), 0, buffers_.bytes()), "clearing the gathered layers");
  for (cudaEvent_t* e : {&ready_[0], &ready_[1], &queued_})
    check(cudaEventCreateWithFlags(e, cudaEventDisableTiming), "creating a CUDA event");
}

LayerBuffers::~LayerBuffers() {
  for (cudaEvent_t e : {ready_[0], ready_[1], queued_})
    if (e) cudaEventDestroy(e);
}

ShardedWeights::ShardedWeights(const model::ModelConfig& config, const DeviceLayout& layout, int rank, int ranks,
                               std::shared_ptr<LayerBuffers> buffers, const char* what)
    : buckets_(gradient_buckets(config, layout, ranks)), rank_(rank), buffers_(std::move(buffers)) {
  if (ranks < 1 || rank < 0 || rank >= ranks) fail("internal: rank {} of {} ranks", rank, ranks);
  if (buffers_->slot_elements_ < buckets_.largest_layer()) fail("internal: ZeRO-3's layer buffers are too small");
  const dist::ShardLayout cut(host_numel(layout), ranks);
  pieces_ = shard_pieces(layout, cut.begin(rank), cut.end(rank));
  shard_.allocate(cut.size(rank) * sizeof(bf16), fmt::format("this rank's shard of {} (bf16)", what).c_str());
  outer_.allocate(buckets_.outer.numel * sizeof(bf16),
                  fmt::format("the embedding, final norm and LM head of {} (bf16)", what).c_str());
  check(cudaMemset(outer_.as<bf16>(), 0, outer_.bytes()), "clearing the weights");
  layer_parts_.resize(buckets_.layers.size());
  layer_own_.resize(buckets_.layers.size());
  for (size_t l = 0; l < buckets_.layers.size(); ++l) {
    bf16* base = buffers_->slot(static_cast<int64_t>(l));
    for (const BucketPart& p : buckets_.layers[l].parts) {
      layer_parts_[l].push_back({base + p.staging_offset, p.numel * sizeof(bf16), p.owner});
      if (p.owner == rank_) layer_own_[l].push_back(p);
    }
  }
  for (const BucketPart& p : buckets_.outer.parts)
    outer_parts_.push_back({outer_.as<bf16>() + p.staging_offset, p.numel * sizeof(bf16), p.owner});
}

ShardedWeights::~ShardedWeights() { changed(); }

void ShardedWeights::set_communicator(dist::Communicator& comm) { collectives_.bind(comm, "ZeRO-3"); }

bf16* ShardedWeights::own(const ShardPiece& p) {
  if (in_outer(buckets_.outer, p.device_offset))
    return outer_.as<bf16>() + buckets_.outer.staging_offset(p.device_offset);
  return shard_.as<bf16>() + p.shard_offset;
}

const bf16* ShardedWeights::at(size_t offset) {
  if (open_ >= 0) {
    const auto& range = buckets_.layers[static_cast<size_t>(open_)].ranges.front();
    if (offset >= range.first && offset < range.second) return buffers_->slot(open_) + (offset - range.first);
  }
  return outer_.as<bf16>() + buckets_.outer.staging_offset(offset);  // fails for a layer that is not open
}

bool ShardedWeights::holds(int64_t l) const {
  const LayerBuffers::Held& h = buffers_->held_[l % 2];
  return h.owner == this && h.layer == l;
}

void ShardedWeights::gather(int64_t l, cudaStream_t s) {
  // Behind everything queued on the compute stream so far: the last reader of
  // this buffer (layer l ± 2) and any write of the shard (a step, a load).
  const cudaStream_t c = collectives_.after(s, buffers_->queued_);
  bf16* base = buffers_->slot(l);
  for (const BucketPart& p : layer_own_[static_cast<size_t>(l)])
    check(cudaMemcpyAsync(base + p.staging_offset, shard_.as<bf16>() + p.shard_offset, p.numel * sizeof(bf16),
                          cudaMemcpyDeviceToDevice, c),
          "gathering a layer's weights");
  if (auto* device = collectives_.device()) device->broadcast(layer_parts_[static_cast<size_t>(l)]);
  check(cudaEventRecord(buffers_->ready_[l % 2], c), "recording a layer's gather");
  buffers_->held_[l % 2] = {this, l};
}

void ShardedWeights::open_layer(int64_t l, int64_t next, cudaStream_t s) {
  const auto layers = static_cast<int64_t>(buckets_.layers.size());
  if (l < 0 || l >= layers || next >= layers)
    fail("internal: ZeRO-3 layer {} (then {}) of {}", l, next, buckets_.layers.size());
  if (!holds(l)) gather(l, s);
  // The buffer's last record is the gather of what it holds: layer l.
  check(cudaStreamWaitEvent(s, buffers_->ready_[l % 2], 0), "waiting for a layer's weights");
  if (next >= 0 && (next - l) % 2 != 0 && !holds(next)) gather(next, s);
  open_ = l;
}

void ShardedWeights::close_layer(int64_t l, cudaStream_t) { open_ = -1; }

void ShardedWeights::finish_pass() {
  if (auto* device = collectives_.device()) device->wait("ZeRO-3's gather of the weights");
}

void ShardedWeights::changed() {
  for (LayerBuffers::Held& h : buffers_->held_)
    if (h.owner == this) h = {};
}

void ShardedWeights::share_outer(cudaStream_t s) {
  check(cudaStreamSynchronize(s), "finishing the optimizer step");  // the collectives run on their own stream
  collectives_.stream(s);  // fails before enable_data_parallel
  dist::DeviceCollectives* device = collectives_.device();
  if (!device) return;  // one rank holds every piece
  device->broadcast(outer_parts_);
  device->wait("broadcast of the updated embedding, final norm and LM head");
}

void ShardedWeights::set_tensor(const DeviceSlot& slot, const float* values, cudaStream_t s) {
  if (in_outer(buckets_.outer, slot.offset)) {
    bc::convert_f32_to_bf16(values, outer_.as<bf16>() + buckets_.outer.staging_offset(slot.offset),
                            static_cast<int64_t>(slot.numel), s);
    return;
  }
  for (const ShardPiece& p : pieces_)
    if (p.device_offset >= slot.offset && p.device_offset < slot.offset + slot.numel)
      bc::convert_f32_to_bf16(values + (p.device_offset - slot.offset), own(p), static_cast<int64_t>(p.numel), s);
  changed();
}

void ShardedWeights::load(const DeviceLayout& layout, const ParameterSet<float>& host, cudaStream_t s) {
  each_tensor_on_device(layout, host, s,
                        [&](const DeviceSlot& slot, const float* values) { set_tensor(slot, values, s); });
}

void ShardedWeights::copy_from(const ShardedWeights& other, cudaStream_t s) {
  check(cudaMemcpyAsync(shard_.as<bf16>(), other.shard_.as<bf16>(), shard_.bytes(), cudaMemcpyDeviceToDevice, s),
        "copying a shard of the weights");
  check(cudaMemcpyAsync(outer_.as<bf16>(), other.outer_.as<bf16>(), outer_.bytes(), cudaMemcpyDeviceToDevice, s),
        "copying the embedding, final norm and LM head");
  changed();
}

}  // namespace duet::engine::cuda
