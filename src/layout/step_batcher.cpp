#include "layout/step_batcher.hpp"

#include <algorithm>
#include <functional>

#include "layout/pack_rows.hpp"
#include "layout/rank_balance.hpp"
#include "layout/shuffle.hpp"
#include "util/error.hpp"

namespace duet::layout {

StepBatcher::StepBatcher(std::span<const ExampleShape> shapes, const BatcherOptions& options)
    : options_(options) {
  if (options.global_batch < 1) fail("global_batch must be >= 1, got {}", options.global_batch);
  if (options.pack_tokens < 0)
    fail("pack_tokens must be >= 0 (0 = no packing), got {}", options.pack_tokens);
  if (options.ranks < 1) fail("the number of ranks must be >= 1, got {}", options.ranks);
  unit_sizes_.reserve(shapes.size());
  for (size_t i = 0; i < shapes.size(); ++i) {
    check_fits(shapes[i], static_cast<int64_t>(i), options.layout, options.pack_tokens);
    unit_sizes_.push_back(unit_tokens(shapes[i], options.layout));
    unit_targets_.push_back(response_tokens(shapes[i]));
  }
  const auto n = static_cast<int64_t>(shapes.size());
  steps_per_epoch_ = options.drop_last ? n / options.global_batch
                                       : (n + options.global_batch - 1) / options.global_batch;
  if (steps_per_epoch_ == 0)
    fail("the dataset has {} example(s), fewer than one global batch of {}{}", n,
         options.global_batch, options.drop_last ? " (drop_last is on)" : "");
}

namespace {

// The sum of the `count` largest values; the largest alone when unpacked.
int64_t largest_together(std::vector<int64_t> values, int64_t count) {
  count = std::min<int64_t>(count, static_cast<int64_t>(values.size()));
  std::partial_sort(values.begin(), values.begin() + count, values.end(), std::greater<>());
  int64_t sum = 0;
  for (int64_t i = 0; i < count; ++i) sum += values[static_cast<size_t>(i)];
  return sum;
}

}  // namespace

RowBound StepBatcher::row_bound() const {
  if (options_.pack_tokens == 0) return {largest_together(unit_sizes_, 1), largest_together(unit_targets_, 1)};
  const int64_t tokens = std::min(options_.pack_tokens, largest_together(unit_sizes_, options_.global_batch));
  // A row's targets are among its tokens.
  return {tokens, std::min(tokens, largest_together(unit_targets_, options_.global_batch))};
}

void StepBatcher::check_position(StepPosition position) const {
  if (position.epoch < 0 || position.step < 0 || position.step >= steps_per_epoch_)
    fail("step position (epoch {}, step {}) is out of range: an epoch has {} steps",
         position.epoch, position.step, steps_per_epoch_);
}

std::vector<size_t> StepBatcher::epoch_order(int64_t epoch) const {
  return epoch_permutation(unit_sizes_.size(), options_.seed, epoch);
}

Step StepBatcher::make_step(StepPosition position, std::span<const size_t> order) const {
  check_position(position);
  const size_t begin = static_cast<size_t>(position.step * options_.global_batch);
  const size_t end = std::min(order.size(), begin + static_cast<size_t>(options_.global_batch));

  Step step;
  step.position = position;
  step.examples.assign(order.begin() + begin, order.begin() + end);
  step.num_examples = static_cast<int64_t>(step.examples.size());

  std::vector<int64_t> sizes;
  for (size_t e : step.examples) sizes.push_back(unit_sizes_[e]);
  for (const auto& members : plan_rows(sizes, options_.pack_tokens)) {
    auto& row = step.rows.emplace_back();
    int64_t tokens = 0;
    for (size_t m : members) {
      row.push_back(step.examples[m]);
      tokens += sizes[m];
    }
    step.row_tokens.push_back(tokens);
  }
  step.rank_rows = balance_ranks(step.row_tokens, options_.ranks);
  return step;
}

Step StepBatcher::step(StepPosition position) const {
  check_position(position);  // before shuffling a possibly large epoch
  return make_step(position, epoch_order(position.epoch));
}

StepPosition StepBatcher::next(StepPosition position) const {
  check_position(position);
  if (position.step + 1 < steps_per_epoch_) return {position.epoch, position.step + 1};
  return {position.epoch + 1, 0};
}

StepCursor::StepCursor(const StepBatcher& batcher, StepPosition start)
    : batcher_(batcher), position_(start) {
  batcher_.check_position(start);  // fail at resume time rather than at next()
}

Step StepCursor::next() {
  if (cached_epoch_ != position_.epoch) {
    order_ = batcher_.epoch_order(position_.epoch);
    cached_epoch_ = position_.epoch;
  }
  Step step = batcher_.make_step(position_, order_);
  position_ = batcher_.next(position_);
  return step;
}

}  // namespace duet::layout
