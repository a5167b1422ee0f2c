#include "engine/cuda/device_batch.hpp"

#include <algorithm>
#include <cstring>
#include <span>

#include "backend/cuda/grouping.hpp"

namespace duet::engine::cuda {

using backend::cuda::check;

DeviceBatch carve_batch(Arena& a, int64_t n, int64_t t) {
  DeviceBatch b;
  b.tokens = a.take<uint32_t>(n);
  b.positions = a.take<int32_t>(n);
  b.visible_until = a.take<int32_t>(n);
  b.target_rows = a.take<int32_t>(t);
  b.target_ids = a.take<uint32_t>(t);
  b.id_order = a.take<int32_t>(n);
  b.id_group_start = a.take<int32_t>(n + 1);
  b.row_order = a.take<int32_t>(t);
  b.row_group_start = a.take<int32_t>(t + 1);
  b.d_logp = a.take<float>(t);
  return b;
}

namespace {

// Appends `v` to the staging area and queues its copy to `dst`.
template <typename T>
void stage(std::span<const T> v, T* dst, char*& cursor, cudaStream_t stream) {
  if (v.empty()) return;
  const size_t bytes = v.size() * sizeof(T);
  std::memcpy(cursor, v.data(), bytes);
  check(cudaMemcpyAsync(dst, cursor, bytes, cudaMemcpyHostToDevice, stream), "copying a batch to the GPU");
  cursor += (bytes + 255) / 256 * 256;
}

}  // namespace

int64_t device_tokens_at_most(int64_t used) { return (used + 63) / 64 * 64; }

int64_t device_tokens(const Batch& batch) {
  return std::min(batch.n_tokens(), device_tokens_at_most(batch.n_tokens() - batch.padding));
}

void upload_batch(const Batch& batch, DeviceBatch& dev, PinnedBuffer& host, cudaStream_t stream) {
  const auto n = static_cast<size_t>(device_tokens(batch));
  const std::span<const uint32_t> tokens(batch.tokens.data(), n);
  const auto by_id = backend::cuda::group_by_key(tokens);
  const auto by_row = backend::cuda::group_by_key(std::span<const int32_t>(batch.target_rows));

  // The previous batch's copies may still read the staging area.
  check(cudaStreamSynchronize(stream), "waiting for the previous batch");
  host.reserve(10 * 256 + (n * 6 + batch.target_ids.size() * 4 + 2) * sizeof(int32_t));
  char* cursor = host.as<char>();
  stage(tokens, dev.tokens, cursor, stream);
  stage(std::span<const int32_t>(batch.positions.data(), n), dev.positions, cursor, stream);
  stage(std::span<const int32_t>(batch.visible_until.data(), n), dev.visible_until, cursor, stream);
  stage(std::span<const int32_t>(batch.target_rows), dev.target_rows, cursor, stream);
  stage(std::span<const uint32_t>(batch.target_ids), dev.target_ids, cursor, stream);
  stage(std::span<const int32_t>(by_id.order), dev.id_order, cursor, stream);
  stage(std::span<const int32_t>(by_id.group_start), dev.id_group_start, cursor, stream);
  stage(std::span<const int32_t>(by_row.order), dev.row_order, cursor, stream);
  stage(std::span<const int32_t>(by_row.group_start), dev.row_group_start, cursor, stream);
  dev.n_tokens = static_cast<int64_t>(n);
  dev.n_targets = batch.n_targets();
  dev.n_id_groups = by_id.n_groups();
  dev.n_row_groups = by_row.n_groups();
}

}  // namespace duet::engine::cuda
