#pragma once
// Sequence log-probs per response (the sum over its tokens) from one batch,
// and the way back: d(loss)/d(response log-prob) spread over its tokens.
// These two functions are all that the losses and the trainer see of the model.
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "engine/batch.hpp"
#include "engine/transformer.hpp"

namespace duet::engine {

struct ResponseLogp {
  int64_t example = 0;
  int32_t response = 0;  // 0 = chosen, 1 = rejected, more = ranked
  double logp = 0;       // sum over the response's tokens
  int32_t tokens = 0;
  // Sum over the response's tokens of sum_v z_v (the logits over the whole
  // vocabulary), for TRL's logits/chosen and logits/rejected; NaN when the
  // engine does not compute it.
  double logit_sum = std::numeric_limits<double>::quiet_NaN();
};

// Per-target log-probs summed per response (in double), in batch.responses order;
// with `logit_sum` (per target sum_v z_v, or empty) its sums per response too.
template <typename T>
std::vector<ResponseLogp> sum_responses(const Batch& batch, std::span<const T> logp, std::span<const T> logit_sum = {});
// d(loss)/d(logp) per target from d(loss)/d(response log-prob).
template <typename T>
std::vector<T> spread_response_gradients(const Batch& batch, std::span<const double> d_response);

// One entry per response of the batch, in batch.responses order.
template <typename T>
std::vector<ResponseLogp> score(const Transformer<T>& model, const ParameterSet<T>& params, const Batch& batch,
                                Workspace<T>& ws);

// d_response[r] = d(loss)/d(logp of batch.responses[r]); uses the activations
// of the last score() of this batch in ws and accumulates into grads.
template <typename T>
void backprop(const Transformer<T>& model, const ParameterSet<T>& params, const Batch& batch,
              std::span<const double> d_response, Workspace<T>& ws, ParameterSet<T>& grads);

}  // namespace duet::engine
