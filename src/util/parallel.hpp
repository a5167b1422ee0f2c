#pragma once
// Minimal fork-join parallelism for CPU-side batch work (tokenization, data
// preparation). Numeric kernels use OpenMP instead; this is for coarse tasks
// that each own per-thread state (caches, scratch buffers).
#include <cstddef>
#include <functional>

namespace duet {

// Number of worker threads to use when the user asked for `requested`
// (0 = all hardware threads).
unsigned resolve_threads(unsigned requested);

// Splits [0, n) into contiguous chunks and runs body(thread_index, begin, end)
// on up to `threads` threads. Exceptions from any worker are rethrown (the first
// one by chunk order) after all workers finish.
void parallel_chunks(size_t n, unsigned threads,
                     const std::function<void(unsigned, size_t, size_t)>& body);

}  // namespace duet
