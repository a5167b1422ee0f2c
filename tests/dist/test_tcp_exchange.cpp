// The TCP exchange of the NCCL id: rank 0's bytes reach every rank through
// MASTER_ADDR:MASTER_PORT; a rank that finds no rank 0 fails within the
// timeout with a line naming the address.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <random>
#include <vector>

#include "dist/tcp_exchange.hpp"
#include "util/error.hpp"

namespace duet::dist {
namespace {

int some_port() { return 20000 + static_cast<int>(std::random_device{}() % 20000); }

TEST(TcpExchange, RankZeroBytesReachEveryRank) {
  const int port = some_port(), size = 3;
  const std::vector<char> id = {'n', 'c', 'c', 'l', 0, 7, -1};
  std::vector<std::future<std::vector<char>>> ranks;
  for (int r = size - 1; r >= 0; --r)  // the others start first: they retry until rank 0 listens
    ranks.push_back(std::async(std::launch::async, [=] {
      return tcp_broadcast({"127.0.0.1", port, r, size, 20}, r == 0 ? id : std::vector<char>{});
    }));
  for (auto& f : ranks) EXPECT_EQ(f.get(), id);
}

TEST(TcpExchange, NoRankZeroFailsWithinTheTimeout) {
  const auto start = std::chrono::steady_clock::now();
  try {
    tcp_broadcast({"127.0.0.1", some_port(), 1, 2, 1.0}, {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot reach rank 0 at 127.0.0.1:"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(TcpExchange, MissingRanksFailOnRankZero) {
  try {
    tcp_broadcast({"127.0.0.1", some_port(), 0, 3, 1.0}, {'x'});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("only 1 of 3 ranks reached"), std::string::npos) << e.what();
  }
}

TEST(TcpExchange, NeedsTheAddress) {
  EXPECT_THROW(tcp_broadcast({"", 0, 1, 2, 1.0}, {}), Error);
}

}  // namespace
}  // namespace duet::dist
