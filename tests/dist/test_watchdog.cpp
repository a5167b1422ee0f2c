// The collective watchdog: a collective that waits longer than the limit
// ends the process (through the communicator's abort) with a line naming the
// rank and the collective; collectives within the limit pass untouched.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <thread>

#include "dist/watchdog.hpp"
#include "util/error.hpp"

namespace duet::dist {
namespace {

// One rank whose all_reduce takes `delay`; abort exits with the given code.
class SlowCommunicator final : public Communicator {
 public:
  explicit SlowCommunicator(std::chrono::milliseconds delay) : delay_(delay) {}
  int rank() const override { return 2; }
  int size() const override { return 4; }
  std::string_view backend() const override { return "slow"; }
  void all_reduce_sum(float*, size_t) override { std::this_thread::sleep_for(delay_); }
  void all_reduce_sum(double*, size_t) override { std::this_thread::sleep_for(delay_); }
  void reduce_scatter_sum(const float*, float*, size_t) override {}
  void all_gather(float*, size_t) override {}
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::_Exit(code); }

 private:
  std::chrono::milliseconds delay_;
};

TEST(Watchdog, FastCollectivesPass) {
  WatchedCommunicator comm(std::make_unique<SlowCommunicator>(std::chrono::milliseconds(10)), 5.0);
  double x = 1;
  for (int i = 0; i < 20; ++i) comm.all_reduce_sum(&x, 1);
  EXPECT_EQ(comm.rank(), 2);
  EXPECT_EQ(comm.size(), 4);
}

TEST(Watchdog, AStuckCollectiveEndsTheJob) {
  EXPECT_EXIT(
      {
        WatchedCommunicator comm(std::make_unique<SlowCommunicator>(std::chrono::milliseconds(20000)), 0.3);
        float x = 1;
        comm.all_reduce_sum(&x, 1);
      },
      testing::ExitedWithCode(1), "rank 2: all_reduce waited more than 0.3 s for the other ranks \\(--nccl-timeout\\)");
}

TEST(Watchdog, RejectsANonPositiveLimit) {
  EXPECT_THROW(WatchedCommunicator(std::make_unique<SlowCommunicator>(std::chrono::milliseconds(0)), 0.0), Error);
}

}  // namespace
}  // namespace duet::dist
