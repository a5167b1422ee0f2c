#pragma once
// Fresh random inputs in every test run, replayable: each test draws a new
// seed (std::random_device) and traces it in failure messages;
// DUET_TEST_SEED=<n> replays a failing run.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <random>

namespace duet::test {

inline uint64_t fresh_seed() {
  if (const char* s = std::getenv("DUET_TEST_SEED")) return std::strtoull(s, nullptr, 10);
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ rd();
}

}  // namespace duet::test

// Declares `rng`, seeded freshly, and traces the seed in every failure message.
#define DUET_SEEDED_RNG(rng)                                                \
  const uint64_t rng##_seed = ::duet::test::fresh_seed();                   \
  SCOPED_TRACE(::testing::Message() << "DUET_TEST_SEED=" << rng##_seed);    \
  std::mt19937_64 rng(rng##_seed)
