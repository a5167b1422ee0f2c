#include "layout/shuffle.hpp"

#include <limits>
#include <numeric>
#include <utility>

namespace duet::layout {

uint64_t mix_seed(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t uniform_below(std::mt19937_64& rng, uint64_t bound) {
  // Accept only draws below the largest multiple of bound that fits in 2^64.
  const uint64_t excess = (std::numeric_limits<uint64_t>::max() % bound + 1) % bound;
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - excess;  // inclusive
  uint64_t x;
  do {
    x = rng();
  } while (x > limit);
  return x % bound;
}

void fisher_yates(std::vector<size_t>& items, std::mt19937_64& rng) {
  for (size_t i = items.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(uniform_below(rng, i));
    std::swap(items[i - 1], items[j]);
  }
}

std::vector<size_t> epoch_permutation(size_t n, uint64_t seed, int64_t epoch) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937_64 rng(mix_seed(mix_seed(seed) ^ static_cast<uint64_t>(epoch)));
  fisher_yates(order, rng);
  return order;
}

}  // namespace duet::layout
