#include "util/parallel.hpp"

#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

namespace duet {

unsigned resolve_threads(unsigned requested) {
  if (requested > 0) return requested;
  return std::max(1u, std::thread::hardware_concurrency());
}

void parallel_chunks(size_t n, unsigned threads,
                     const std::function<void(unsigned, size_t, size_t)>& body) {
  threads = static_cast<unsigned>(std::min<size_t>(resolve_threads(threads), std::max<size_t>(n, 1)));
  if (threads <= 1) {
    body(0, 0, n);
    return;
  }
  std::vector<std::exception_ptr> errors(threads);
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (unsigned t = 0; t < threads; ++t) {
    size_t begin = n * t / threads, end = n * (t + 1) / threads;
    workers.emplace_back([&, t, begin, end] {
      try {
        body(t, begin, end);
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  }
  for (auto& w : workers) w.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace duet
