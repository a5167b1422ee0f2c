#include "trainer/preference_batch.hpp"

#include <algorithm>
#include <map>

#include "util/error.hpp"

namespace duet::trainer {

PreferenceBatch::PreferenceBatch(const layout::Row& row) : batch(engine::make_batch(row)) {
  std::map<int64_t, std::pair<int64_t, int64_t>> found;  // example -> (chosen, rejected) positions
  for (size_t k = 0; k < batch.responses.size(); ++k) {
    const auto& r = batch.responses[k];
    auto [it, fresh] = found.try_emplace(r.example, -1, -1);
    if (fresh) examples.push_back(r.example);
    if (r.response == 0) it->second.first = static_cast<int64_t>(k);
    else if (r.response == 1) it->second.second = static_cast<int64_t>(k);
    else fail("example {} has more than two responses: duet train's losses are pairwise (keep chosen and rejected)", r.example);
  }
  for (int64_t e : examples) {
    auto [c, r] = found.at(e);
    if (c < 0 || r < 0) fail("internal: example {} lacks a chosen or rejected response in its row", e);
    response_of_pair.emplace_back(static_cast<size_t>(c), static_cast<size_t>(r));
  }
}

std::vector<loss::PairLogps> PreferenceBatch::pairs(std::span<const engine::ResponseLogp> policy,
                                                    std::span<const engine::ResponseLogp> ref, int64_t vocab) const {
  std::vector<loss::PairLogps> out;
  out.reserve(response_of_pair.size());
  for (auto [c, r] : response_of_pair) {
    loss::PairLogps p;
    p.policy_chosen = policy[c].logp;
    p.policy_rejected = policy[r].logp;
    if (!ref.empty()) p.ref_chosen = ref[c].logp, p.ref_rejected = ref[r].logp;
    p.chosen_tokens = policy[c].tokens;
    p.rejected_tokens = policy[r].tokens;
    // Mean logit over the vocabulary and the response's tokens (NaN stays NaN).
    auto mean_logit = [&](const engine::ResponseLogp& s) {
      return s.logit_sum / (static_cast<double>(std::max<int32_t>(s.tokens, 1)) * static_cast<double>(vocab));
    };
    p.chosen_logits = mean_logit(policy[c]);
    p.rejected_logits = mean_logit(policy[r]);
    out.push_back(p);
  }
  return out;
}

std::vector<double> PreferenceBatch::response_gradients(std::span<const loss::PairResult> results) const {
  std::vector<double> d(batch.responses.size(), 0.0);
  for (size_t p = 0; p < response_of_pair.size(); ++p) {
    d[response_of_pair[p].first] = results[p].d_policy_chosen;
    d[response_of_pair[p].second] = results[p].d_policy_rejected;
  }
  return d;
}

}  // namespace duet::trainer
