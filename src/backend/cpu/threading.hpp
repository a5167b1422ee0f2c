#pragma once
// When an op is worth OpenMP threads. Below a few tens of thousands of
// elements, forking a team costs more than the work, and on a loaded machine
// spinning OpenMP workers can slow a tiny model down twentyfold (measured:
// the trainer tests took 22 s instead of 0.3 s with 2 busy cores). Results
// never depend on the thread count, so this only changes speed.
#include <cstdint>

namespace duet::backend::cpu {

inline bool parallel_worth(int64_t elements) { return elements >= (int64_t{1} << 15); }

}  // namespace duet::backend::cpu
