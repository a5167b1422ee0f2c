#pragma once
// One micro-batch row as the loss sees it: the policy's (and reference's)
// response log-probs gathered into chosen/rejected pairs, and the way back
// from pair gradients to per-response gradients for the engine.
#include <cstdint>
#include <span>
#include <vector>

#include "engine/batch.hpp"
#include "engine/scoring.hpp"
#include "loss/loss.hpp"

namespace duet::trainer {

struct PreferenceBatch {
  engine::Batch batch;
  std::vector<int64_t> examples;  // example index of each pair, in row order
  // Per pair: positions of its chosen and rejected response in batch.responses.
  std::vector<std::pair<size_t, size_t>> response_of_pair;

  explicit PreferenceBatch(const layout::Row& row);

  // Pairs from scores of this batch (ref may be empty for reference-free losses);
  // `vocab` (the model's vocabulary size) turns the policy's logit sums into
  // mean logits.
  std::vector<loss::PairLogps> pairs(std::span<const engine::ResponseLogp> policy,
                                     std::span<const engine::ResponseLogp> ref, int64_t vocab) const;

  // d(loss)/d(response logp) for every response of the batch from the pairs'
  // results (in pairs() order).
  std::vector<double> response_gradients(std::span<const loss::PairResult> results) const;
};

}  // namespace duet::trainer
