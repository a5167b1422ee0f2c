// PassLog::agree: the ranks' sequences of engine passes compared through one
// all-reduce. Ranks are threads here, over a communicator whose all-reduce
// sums through shared memory; a real job's is MPI or NCCL.
#include <gtest/gtest.h>

#include <barrier>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "trainer/pass_log.hpp"
#include "util/error.hpp"

namespace duet::trainer {
namespace {

class ThreadRanks {
 public:
  explicit ThreadRanks(int n) : n_(n), sync_(n) {}

  class Rank final : public dist::Communicator {
   public:
    Rank(ThreadRanks& all, int rank) : all_(all), rank_(rank) {}
    int rank() const override { return rank_; }
    int size() const override { return all_.n_; }
    std::string_view backend() const override { return "threads"; }
    void all_reduce_sum(double* data, size_t count) override {
      {
        std::lock_guard lock(all_.m_);
        if (all_.sum_.size() < count) all_.sum_.resize(count, 0.0);
        for (size_t i = 0; i < count; ++i) all_.sum_[i] += data[i];
      }
      all_.sync_.arrive_and_wait();
      for (size_t i = 0; i < count; ++i) data[i] = all_.sum_[i];
      all_.sync_.arrive_and_wait();
      if (rank_ == 0) all_.sum_.assign(all_.sum_.size(), 0.0);
      all_.sync_.arrive_and_wait();
    }
    void all_reduce_sum(float*, size_t) override { ADD_FAILURE() << "not used"; }
    void reduce_scatter_sum(const float*, float*, size_t) override { ADD_FAILURE() << "not used"; }
    void all_gather(float*, size_t) override { ADD_FAILURE() << "not used"; }
    void broadcast(void*, size_t, int) override { ADD_FAILURE() << "not used"; }
    void barrier() override { all_.sync_.arrive_and_wait(); }
    [[noreturn]] void abort(int code) override { std::_Exit(code); }

   private:
    ThreadRanks& all_;
    int rank_;
  };

  // Each rank notes its sequence then agrees, twice (the log clears between):
  // the messages of the ranks that failed, "" for those that passed.
  std::vector<std::string> agree(const std::vector<std::vector<Pass>>& sequences) {
    std::vector<std::string> errors(static_cast<size_t>(n_));
    std::vector<std::thread> threads;
    for (int r = 0; r < n_; ++r)
      threads.emplace_back([&, r] {
        Rank comm(*this, r);
        PassLog log;
        for (int round = 0; round < 2; ++round) {
          for (Pass p : sequences[static_cast<size_t>(r)]) log.note(p);
          try {
            log.agree(comm, "step 7");
          } catch (const Error& e) {
            errors[static_cast<size_t>(r)] = e.what();
          }
        }
      });
    for (auto& t : threads) t.join();
    return errors;
  }

 private:
  int n_;
  std::barrier<> sync_;
  std::mutex m_;
  std::vector<double> sum_;
};

using enum Pass;

TEST(PassLog, RanksWithTheSamePassesAgree) {
  const std::vector<Pass> row = {reference, policy, backprop, reference, policy, last_mark, backprop};
  for (int n : {1, 2, 3, 5}) {
    ThreadRanks ranks(n);
    for (const std::string& e : ranks.agree(std::vector(static_cast<size_t>(n), row))) EXPECT_EQ(e, "") << n;
  }
}

TEST(PassLog, EveryRankFailsWhenOneDiffers) {
  const std::vector<Pass> row = {reference, policy, last_mark, backprop};
  const std::vector<std::vector<Pass>> variants = {
      {reference, last_mark, backprop},          // an empty policy pass forgotten
      {policy, reference, last_mark, backprop},  // the same passes in another order
      {reference, policy, backprop},             // the last backprop not marked
  };
  for (const auto& other : variants) {
    ThreadRanks ranks(3);
    const auto errors = ranks.agree({row, other, row});
    for (size_t r = 0; r < errors.size(); ++r) {
      EXPECT_NE(errors[r].find("step 7: the ranks made different engine passes"), std::string::npos)
          << "rank " << r << ": " << errors[r];
      EXPECT_EQ(errors[r].find('\n'), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace duet::trainer
