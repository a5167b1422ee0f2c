#pragma once
// The step's pair log-probs on every rank. Each rank scores only its rows,
// but the loss's normalisation, coupled losses (aot sorts over the batch,
// bco_pair's running mean) and the logged metrics need all pairs, in the
// one-process order (row by row). Each rank places its rows' pairs and leaves
// the other slots zero; one all-reduce of the sums makes the vector whole,
// exactly (x + 0 is x).
#include <span>
#include <vector>

#include "dist/communicator.hpp"
#include "loss/loss.hpp"

namespace duet::trainer {

class StepPairs {
 public:
  // pairs_per_row[r]: how many pairs row r of the step (or eval pass) holds.
  explicit StepPairs(const std::vector<size_t>& pairs_per_row);

  size_t first(size_t row) const { return first_[row]; }
  size_t count(size_t row) const { return first_[row + 1] - first_[row]; }
  // The pairs of `row`, scored on this rank. duet::fail (internal) on a count mismatch.
  void place(size_t row, std::span<const loss::PairLogps> pairs);
  // Collective: every pair of every row, on every rank. duet::fail (internal)
  // when a pair was placed by no rank or by several.
  std::vector<loss::PairLogps> share(dist::Communicator& comm);

 private:
  std::vector<size_t> first_;  // per row, then the total
  std::vector<loss::PairLogps> pairs_;
  std::vector<bool> placed_;
};

}  // namespace duet::trainer
