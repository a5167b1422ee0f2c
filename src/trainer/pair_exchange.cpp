#include "trainer/pair_exchange.hpp"

#include <algorithm>

#include "util/error.hpp"

namespace duet::trainer {

namespace {

constexpr size_t kFields = 9;  // the eight numbers of a PairLogps and a count of the ranks that placed it

void encode(const loss::PairLogps& p, double* out) {
  const double v[kFields] = {p.policy_chosen,
                             p.policy_rejected,
                             p.ref_chosen,
                             p.ref_rejected,
                             static_cast<double>(p.chosen_tokens),
                             static_cast<double>(p.rejected_tokens),
                             p.chosen_logits,
                             p.rejected_logits,
                             1.0};
  std::copy(v, v + kFields, out);
}

loss::PairLogps decode(const double* in) {
  loss::PairLogps p;
  p.policy_chosen = in[0], p.policy_rejected = in[1];
  p.ref_chosen = in[2], p.ref_rejected = in[3];
  p.chosen_tokens = static_cast<int64_t>(in[4]), p.rejected_tokens = static_cast<int64_t>(in[5]);
  p.chosen_logits = in[6], p.rejected_logits = in[7];
  return p;
}

}  // namespace

StepPairs::StepPairs(const std::vector<size_t>& pairs_per_row) : first_(pairs_per_row.size() + 1, 0) {
  for (size_t r = 0; r < pairs_per_row.size(); ++r) first_[r + 1] = first_[r] + pairs_per_row[r];
  pairs_.resize(first_.back());
  placed_.assign(first_.back(), false);
}

void StepPairs::place(size_t row, std::span<const loss::PairLogps> pairs) {
  if (pairs.size() != count(row))
    fail("internal: row {} has {} pairs for {} examples", row, pairs.size(), count(row));
  const auto at = static_cast<ptrdiff_t>(first(row));
  std::copy(pairs.begin(), pairs.end(), pairs_.begin() + at);
  std::fill(placed_.begin() + at, placed_.begin() + at + static_cast<ptrdiff_t>(pairs.size()), true);
}

std::vector<loss::PairLogps> StepPairs::share(dist::Communicator& comm) {
  std::vector<double> buffer(pairs_.size() * kFields, 0.0);
  for (size_t i = 0; i < pairs_.size(); ++i)
    if (placed_[i]) encode(pairs_[i], buffer.data() + i * kFields);
  if (comm.size() > 1) comm.all_reduce_sum(buffer.data(), buffer.size());
  std::vector<loss::PairLogps> all(pairs_.size());
  for (size_t i = 0; i < all.size(); ++i) {
    const double* p = buffer.data() + i * kFields;
    if (p[kFields - 1] != 1.0)
      fail("internal: pair {} of the step was scored by {} ranks instead of one", i, p[kFields - 1]);
    all[i] = decode(p);
  }
  return all;
}

}  // namespace duet::trainer
