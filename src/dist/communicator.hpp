#pragma once
// The collectives of data parallelism, over the ranks of one training job.
// Buffers are memory the implementation reaches: the host for the MPI and
// single-process communicators, the device for NCCL. Every rank calls the same
// collectives in the same order with the same counts (what MPI and NCCL
// require); a failure throws duet::Error naming the collective.
#include <cstddef>
#include <span>
#include <string_view>

namespace duet::dist {

class DeviceCollectives;

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string_view backend() const = 0;  // "single", "mpi" or "nccl"

  // In place: data becomes the element-wise sum over ranks.
  virtual void all_reduce_sum(float* data, size_t count) = 0;
  virtual void all_reduce_sum(double* data, size_t count) = 0;
  // `send` holds `count` elements cut into size() shards by ShardLayout(count,
  // size()); `shard` receives the sum over ranks of this rank's shard.
  virtual void reduce_scatter_sum(const float* send, float* shard, size_t count) = 0;
  // In place over `count` elements cut as above: every rank's shard of `data`
  // goes to every rank.
  virtual void all_gather(float* data, size_t count) = 0;
  // `bytes` bytes of rank root's `data` to every rank.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // A barrier that --nccl-timeout does not bound, for a wait known to be long
  // (the others wait while rank 0 precomputes the reference log-probs or
  // writes a checkpoint's model); a rank that fails meanwhile still ends the
  // job through abort().
  virtual void barrier_unbounded() { barrier(); }
  // Ends every rank of the job now with exit code `code` (the caller has
  // printed why). Safe to call from another thread while a collective blocks.
  [[noreturn]] virtual void abort(int code) = 0;
  // The queued device collectives of a communicator over GPU memory (NCCL);
  // null for the others.
  virtual DeviceCollectives* device() { return nullptr; }
};

// Collectives on GPU memory queued on the communicator's own CUDA stream
// without waiting: the caller orders them against its own streams with CUDA
// events (stream() is a cudaStream_t), may queue its own kernels on stream()
// after them, and waits once (wait: polling, bounded by --nccl-timeout). Each
// call is one group (one launch however many parts), and every rank must make
// the same calls with the same parts.
class DeviceCollectives {
 public:
  struct Part {
    void* data = nullptr;
    size_t count = 0;  // floats (reduce_sum) or bytes (broadcast)
    int root = 0;
  };
  virtual ~DeviceCollectives() = default;
  virtual void* stream() = 0;
  // In place: root's data[0, count) becomes the sum over ranks (fp32); the others' data is left as it was.
  virtual void reduce_sum(std::span<const Part> parts) = 0;
  // Root's data[0, count) bytes to every rank.
  virtual void broadcast(std::span<const Part> parts) = 0;
  // In place on every rank: data[0, count) becomes the sum over ranks (fp32; root unused).
  virtual void all_reduce_sum(std::span<const Part> parts) = 0;
  virtual void wait(const char* what) = 0;
};

}  // namespace duet::dist
