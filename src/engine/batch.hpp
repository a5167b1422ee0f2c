#pragma once
// What the engine consumes for one micro-batch: a token-forest row (token,
// position, visible_until) and the log-prob targets (predictor row, token id),
// copied out of a layout::Row into flat arrays that a device can take as is.
#include <cstdint>
#include <vector>

#include "layout/row.hpp"
#include "layout/targets.hpp"
#include "util/error.hpp"

namespace duet::engine {

struct Batch {
  std::vector<uint32_t> tokens;
  std::vector<int32_t> positions;
  std::vector<int32_t> visible_until;
  std::vector<int32_t> target_rows;  // the row whose hidden state predicts the target
  std::vector<uint32_t> target_ids;
  std::vector<layout::ResponseTargets> responses;  // contiguous target ranges per response
  // Trailing padding tokens (packed rows are padded to their capacity): each
  // sees only itself and predicts nothing, so an engine may leave them out.
  int64_t padding = 0;

  int64_t n_tokens() const { return static_cast<int64_t>(tokens.size()); }
  int64_t n_targets() const { return static_cast<int64_t>(target_ids.size()); }
};

// duet::fail unless the arrays agree in length and every token id is below
// `vocab` (a tokenizer that does not fit the model); every engine checks this
// before it indexes an embedding table with the ids.
inline void check_batch(const Batch& b, int64_t vocab) {
  const auto n = b.tokens.size();
  if (b.positions.size() != n || b.visible_until.size() != n || b.target_rows.size() != b.target_ids.size())
    fail("internal: inconsistent batch arrays");
  for (uint32_t t : b.tokens)
    if (t >= static_cast<uint64_t>(vocab))
      fail("token id {} is outside the model's vocabulary ({}): the tokenizer does not fit this model", t, vocab);
}

inline Batch make_batch(const layout::Row& row) {
  Batch b;
  b.tokens.assign(row.token.begin(), row.token.end());
  b.positions.assign(row.position.begin(), row.position.end());
  b.visible_until.assign(row.visible_until.begin(), row.visible_until.end());
  for (const auto& t : layout::logprob_targets(row)) {
    b.target_rows.push_back(static_cast<int32_t>(t.predictor));
    b.target_ids.push_back(t.token);
  }
  b.responses = layout::response_targets(row);
  b.padding = row.padding();
  return b;
}

}  // namespace duet::engine
