#include "trainer/pair_exchange.hpp"

#include "util/error.hpp"

namespace duet::trainer {

namespace {

constexpr size_t kFields = 9;  // the eight numbers of a PairLogps and a count of the ranks that filled it

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

void share_pairs(dist::Communicator& comm, std::vector<loss::PairLogps>& pairs, const std::vector<bool>& filled) {
  if (filled.size() != pairs.size()) fail("internal: share_pairs got {} flags for {} pairs", filled.size(), pairs.size());
  std::vector<double> buffer(pairs.size() * kFields, 0.0);
  for (size_t i = 0; i < pairs.size(); ++i)
    if (filled[i]) encode(pairs[i], buffer.data() + i * kFields);
  comm.all_reduce_sum(buffer.data(), buffer.size());
  for (size_t i = 0; i < pairs.size(); ++i) {
    const double* p = buffer.data() + i * kFields;
    if (p[kFields - 1] != 1.0)
      fail("internal: pair {} of the step was scored by {} ranks instead of one", i, p[kFields - 1]);
    pairs[i] = decode(p);
  }
}

}  // namespace duet::trainer
