#pragma once
// Seeded shuffling that gives the same result with every standard library:
// std::mt19937_64's output is fixed by the standard, but std::shuffle and
// std::uniform_int_distribution are not, so both are implemented here.
#include <cstdint>
#include <random>
#include <vector>

namespace duet::layout {

// SplitMix64 finaliser: decorrelates nearby seeds (seed, seed+1, ...).
uint64_t mix_seed(uint64_t x);

// Unbiased draw in [0, bound) by rejection; bound >= 1.
uint64_t uniform_below(std::mt19937_64& rng, uint64_t bound);

// Fisher-Yates: for i = n-1 .. 1, swap p[i] with p[uniform_below(i + 1)].
void fisher_yates(std::vector<size_t>& items, std::mt19937_64& rng);

// The order of examples 0..n-1 in `epoch`: each epoch has its own generator
// seeded from (seed, epoch), so any epoch is computed without the earlier ones.
std::vector<size_t> epoch_permutation(size_t n, uint64_t seed, int64_t epoch);

}  // namespace duet::layout
