#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "util/error.hpp"
#include "util/parallel.hpp"

TEST(Parallel, CoversEveryIndexExactlyOnce) {
  for (unsigned threads : {1u, 2u, 3u, 7u}) {
    for (size_t n : {0u, 1u, 5u, 1000u}) {
      std::vector<std::atomic<int>> hits(n);
      duet::parallel_chunks(n, threads, [&](unsigned, size_t b, size_t e) {
        for (size_t i = b; i < e; ++i) hits[i]++;
      });
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << n << " " << threads;
    }
  }
}

TEST(Parallel, RethrowsWorkerErrors) {
  EXPECT_THROW(duet::parallel_chunks(100, 4,
                                     [](unsigned t, size_t, size_t) {
                                       if (t == 2) duet::fail("worker {} failed", t);
                                     }),
               duet::Error);
}
