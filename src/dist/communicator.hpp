#pragma once
// The collectives of data parallelism, over the ranks of one training job.
// Buffers are memory the implementation reaches: the host for the MPI and
// single-process communicators, the device for NCCL. Every rank calls the same
// collectives in the same order with the same counts (what MPI and NCCL
// require); a failure throws duet::Error naming the collective.
#include <cstddef>
#include <string_view>

namespace duet::dist {

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
};

}  // namespace duet::dist
