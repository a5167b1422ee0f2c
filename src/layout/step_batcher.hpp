#pragma once
// Optimizer steps from a dataset: a seeded per-epoch shuffle, global batches of
// N examples, each batch packed into micro-batch rows and spread over ranks.
// A step is a pure function of (shapes, options, epoch, step), so a run resumes
// exactly from a saved StepPosition.
#include <compare>
#include <cstdint>
#include <span>
#include <vector>

#include "layout/example.hpp"

namespace duet::layout {

struct BatcherOptions {
  Layout layout = Layout::shared;
  int64_t global_batch = 1;  // examples per optimizer step
  bool drop_last = true;     // false: keep the epoch's short last batch
  int64_t pack_tokens = 0;   // row capacity; 0 = unpacked, one example per row
  int ranks = 1;             // data-parallel ranks the rows are spread over
  uint64_t seed = 0;
};

struct StepPosition {
  int64_t epoch = 0;
  int64_t step = 0;  // within the epoch
  auto operator<=>(const StepPosition&) const = default;
};

struct Step {
  StepPosition position;
  std::vector<size_t> examples;  // dataset positions, in shuffled order
  // What the loss divides by (docs/losses.md): the same whatever layout and packing.
  int64_t num_examples = 0;
  std::vector<std::vector<size_t>> rows;       // per micro-batch row: dataset positions
  std::vector<int64_t> row_tokens;             // per row: tokens before padding
  std::vector<std::vector<size_t>> rank_rows;  // per rank: indices into `rows`
};

// The most tokens (before padding) and log-prob targets one row can hold.
struct RowBound {
  int64_t tokens = 0, targets = 0;
};

class StepBatcher {
 public:
  // shapes[i] is dataset position i. duet::fail when an example is invalid or
  // does not fit in pack_tokens, or when an epoch would have no step.
  StepBatcher(std::span<const ExampleShape> shapes, const BatcherOptions& options);

  int64_t num_examples() const { return static_cast<int64_t>(unit_sizes_.size()); }
  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  const BatcherOptions& options() const { return options_; }

  // Dataset positions in the order `epoch` visits them.
  std::vector<size_t> epoch_order(int64_t epoch) const;
  // The step at `position`; `order` must be epoch_order(position.epoch).
  Step make_step(StepPosition position, std::span<const size_t> order) const;
  Step step(StepPosition position) const;

  // Bounds every row of every step, whatever the shuffle: one example when
  // unpacked; packed, at most pack_tokens and at most the global_batch largest
  // examples together (a row holds examples of one step). An engine sizes its
  // memory for it at the start of a run, so a run that cannot fit fails then.
  RowBound row_bound() const;

  // The position after `position` (wrapping into the next epoch).
  StepPosition next(StepPosition position) const;
  // duet::fail unless 0 <= step < steps_per_epoch() and epoch >= 0.
  void check_position(StepPosition position) const;

 private:

  BatcherOptions options_;
  std::vector<int64_t> unit_sizes_;
  std::vector<int64_t> unit_targets_;  // response tokens: the log-prob targets
  int64_t steps_per_epoch_ = 0;
};

// Walks the steps from `start`, shuffling each epoch once. Resuming a run is
// constructing a cursor at the saved position().
class StepCursor {
 public:
  explicit StepCursor(const StepBatcher& batcher, StepPosition start = {});
  StepPosition position() const { return position_; }  // of the step next() returns
  Step next();

 private:
  const StepBatcher& batcher_;
  StepPosition position_;
  int64_t cached_epoch_ = -1;
  std::vector<size_t> order_;
};

}  // namespace duet::layout
