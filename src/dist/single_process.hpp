#pragma once
// The communicator of a run with one rank: every collective is a copy or nothing.
#include "dist/communicator.hpp"

namespace duet::dist {

class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string_view backend() const override { return "single"; }
  void all_reduce_sum(float*, size_t) override {}
  void all_reduce_sum(double*, size_t) override {}
  void reduce_scatter_sum(const float* send, float* shard, size_t count) override;
  void all_gather(float*, size_t) override {}
  void broadcast(void*, size_t, int root) override;
  void barrier() override {}
  [[noreturn]] void abort(int code) override;
};

}  // namespace duet::dist
