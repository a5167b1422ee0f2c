#include "trainer/pass_log.hpp"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "util/error.hpp"

namespace duet::trainer {

void PassLog::agree(dist::Communicator& comm, const std::string& where) {
  const std::string seen = std::move(sequence_);
  sequence_.clear();
  if (comm.size() < 2) return;
  // 21 bits of the hash: h and h² summed over up to 1024 ranks stay exact in a
  // double, and the sums equal N·h and N·h² only if every rank's h is h.
  const auto h = static_cast<double>(XXH3_64bits(seen.data(), seen.size()) & ((uint64_t{1} << 21) - 1));
  double sums[3] = {h, h * h, static_cast<double>(seen.size())};
  comm.all_reduce_sum(sums, 3);
  const double n = comm.size();
  if (sums[0] != n * h || sums[1] != n * h * h)
    fail("internal: {}: the ranks made different engine passes (rank {}: {} passes, \"{}\"; {:.1f} on average); "
         "ZeRO's collectives would wait for each other",
         where, comm.rank(), seen.size(), seen.size() > 64 ? seen.substr(0, 64) + "..." : seen, sums[2] / n);
}

}  // namespace duet::trainer
