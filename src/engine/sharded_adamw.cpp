#include "engine/sharded_adamw.hpp"

#include <algorithm>
#include <cmath>

#include "backend/adamw.hpp"
#include "util/error.hpp"

namespace duet::engine {

ShardedAdamW::ShardedAdamW(dist::Communicator& comm, int zero_stage, std::vector<TensorSlot> slots,
                           AdamWOptions options)
    : comm_(comm), stage_(zero_stage), slots_(std::move(slots)), options_(options) {
  if (stage_ < 0 || stage_ > 3) fail("--zero-stage {}: must be 0, 1, 2 or 3", stage_);
  total_ = slots_.empty() ? 0 : slots_.back().offset + slots_.back().numel;
  const dist::ShardLayout layout(total_, shard_count());
  begin_ = layout.begin(shard_index());
  end_ = layout.end(shard_index());
  m_.assign(end_ - begin_, 0.0f);
  v_.assign(end_ - begin_, 0.0f);
  if (stage_ >= 2) grad_shard_.assign(end_ - begin_, 0.0f);
}

template <typename F>
void ShardedAdamW::for_each_shard_part(F&& f) const {
  for (const TensorSlot& s : slots_) {
    const size_t first = std::max(begin_, s.offset), last = std::min(end_, s.offset + s.numel);
    if (first < last) f(s, first, last);
  }
}

double ShardedAdamW::step(std::span<float> params, std::span<float> grads, double lr) {
  if (params.size() != total_ || grads.size() != total_)
    fail("internal: sharded AdamW over {} elements got {} weights and {} gradients", total_, params.size(),
         grads.size());
  if (!weights_current_) fail("internal: a ZeRO-3 step before the weights were gathered");
  // The summed gradient of this shard: in place (stages 0-1) or in grad_shard_.
  const float* g = nullptr;  // element i of the shard at g[i - begin_]
  if (stage_ <= 1) {
    comm_.all_reduce_sum(grads.data(), total_);
    g = grads.data() + begin_;
  } else {
    comm_.reduce_scatter_sum(grads.data(), grad_shard_.data(), total_);
    g = grad_shard_.data();
  }
  std::vector<backend::GradView<float>> views;
  for_each_shard_part([&](const TensorSlot&, size_t first, size_t last) {
    views.push_back({g + (first - begin_), static_cast<int64_t>(last - first)});
  });
  double norm = backend::cpu::global_grad_norm<float>(views);
  if (stage_ > 0) {
    double squared = norm * norm;
    comm_.all_reduce_sum(&squared, 1);
    norm = std::sqrt(squared);
  }
  const double scale = options_.max_grad_norm > 0 ? backend::clip_coefficient(norm, options_.max_grad_norm) : 1.0;
  ++steps_;
  for_each_shard_part([&](const TensorSlot& s, size_t first, size_t last) {
    backend::AdamWParams<float> p;
    p.param = params.data() + first;
    p.grad = g + (first - begin_);
    p.m = m_.data() + (first - begin_);
    p.v = v_.data() + (first - begin_);
    p.n = static_cast<int64_t>(last - first);
    p.lr = lr, p.beta1 = options_.beta1, p.beta2 = options_.beta2, p.eps = options_.eps;
    p.weight_decay = options_.weight_decay, p.decay = s.decay;
    p.step = steps_, p.grad_scale = scale;
    backend::cpu::adamw_step(p);
  });
  if (stage_ == 1 || stage_ == 2) comm_.all_gather(params.data(), total_);
  if (stage_ == 3) weights_current_ = false;
  return norm;
}

void ShardedAdamW::gather_weights(std::span<float> params) {
  if (weights_current_) return;
  if (stage_ > 0) comm_.all_gather(params.data(), total_);
  weights_current_ = true;
}

}  // namespace duet::engine
