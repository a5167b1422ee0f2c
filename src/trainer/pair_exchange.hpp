#pragma once
// The step's pair log-probs on every rank: each rank scores only its rows,
// but the loss's normalisation, coupled losses (aot sorts over the batch,
// bco_pair's running mean) and the logged metrics need all pairs, in the
// one-process order. Each rank fills its pairs' slots and leaves the others
// zero; one all-reduce of the sums makes the vector whole, exactly (x + 0 is x).
#include <vector>

#include "dist/communicator.hpp"
#include "loss/loss.hpp"

namespace duet::trainer {

// `pairs[i]` is valid on this rank where filled[i]; afterwards every pair is
// valid on every rank. duet::fail (internal) when a pair was filled by no
// rank or by several. Collective.
void share_pairs(dist::Communicator& comm, std::vector<loss::PairLogps>& pairs, const std::vector<bool>& filled);

}  // namespace duet::trainer
