// A reference log-prob cache (duet ref's JSONL: a header line with the format
// and the weights' hash, then one line per example with its tokens' hash and
// log-probs) -> ReferenceCache.
#include <string_view>

#include "fuzz_target.hpp"
#include "trainer/reference_cache.hpp"

DUET_FUZZ_TARGET(ref_cache, data, size) {
  try {
    (void)duet::trainer::ReferenceCache::parse(std::string_view(reinterpret_cast<const char*>(data), size),
                                               "fuzz/ref_cache.jsonl");
  } catch (const duet::Error&) {
  }
  return 0;
}
