#pragma once
// What the engine scores in a row: one log-prob target per response token, and
// per response the contiguous range of its targets (sequence log-prob = sum).
#include <cstdint>
#include <vector>

#include "layout/row.hpp"

namespace duet::layout {

struct LogprobTarget {
  int32_t index = 0;      // row index of the predicted token
  int32_t predictor = 0;  // row index of the hidden state that predicts it (= parent)
  TokenId token = 0;
  int64_t example = 0;
  int32_t response = 0;
};

struct ResponseTargets {
  int64_t example = 0;
  int32_t response = 0;
  int32_t first = 0;       // first target of this response in logprob_targets(row)
  int32_t num_tokens = 0;  // its token count (= number of targets)
};

// Every response token of the row, in row order (prompts are never scored).
std::vector<LogprobTarget> logprob_targets(const Row& row);

// One entry per response segment, in row order, indexing logprob_targets(row).
std::vector<ResponseTargets> response_targets(const Row& row);

}  // namespace duet::layout
