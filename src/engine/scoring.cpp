#include "engine/scoring.hpp"

#include "util/error.hpp"

namespace duet::engine {

template <typename T>
std::vector<ResponseLogp> sum_responses(const Batch& batch, std::span<const T> logp, std::span<const T> logit_sum) {
  if (static_cast<int64_t>(logp.size()) != batch.n_targets()) fail("internal: one log-prob per target expected");
  if (!logit_sum.empty() && logit_sum.size() != logp.size()) fail("internal: one logit sum per target expected");
  std::vector<ResponseLogp> out;
  out.reserve(batch.responses.size());
  for (const auto& r : batch.responses) {
    double sum = 0;  // accumulate in double: a response may have thousands of tokens
    for (int32_t t = r.first; t < r.first + r.num_tokens; ++t) sum += static_cast<double>(logp[static_cast<size_t>(t)]);
    ResponseLogp& o = out.emplace_back(ResponseLogp{r.example, r.response, sum, r.num_tokens});
    if (!logit_sum.empty()) {
      o.logit_sum = 0;
      for (int32_t t = r.first; t < r.first + r.num_tokens; ++t) o.logit_sum += static_cast<double>(logit_sum[static_cast<size_t>(t)]);
    }
  }
  return out;
}

template <typename T>
std::vector<T> spread_response_gradients(const Batch& batch, std::span<const double> d_response) {
  if (d_response.size() != batch.responses.size()) fail("internal: one gradient per response expected");
  std::vector<T> d_logp(static_cast<size_t>(batch.n_targets()), T(0));
  for (size_t k = 0; k < batch.responses.size(); ++k) {
    const auto& r = batch.responses[k];
    for (int32_t t = r.first; t < r.first + r.num_tokens; ++t) d_logp[static_cast<size_t>(t)] = static_cast<T>(d_response[k]);
  }
  return d_logp;
}

template <typename T>
std::vector<ResponseLogp> score(const Transformer<T>& model, const ParameterSet<T>& params, const Batch& batch,
                                Workspace<T>& ws) {
  const std::span<const T> logp = model.forward(batch, params, ws);
  return sum_responses<T>(batch, logp, std::span<const T>(ws.target_logit_sum.data(), logp.size()));
}

template <typename T>
void backprop(const Transformer<T>& model, const ParameterSet<T>& params, const Batch& batch,
              std::span<const double> d_response, Workspace<T>& ws, ParameterSet<T>& grads) {
  model.backward(batch, params, spread_response_gradients<T>(batch, d_response), ws, grads);
}

template std::vector<ResponseLogp> sum_responses<float>(const Batch&, std::span<const float>, std::span<const float>);
template std::vector<ResponseLogp> sum_responses<double>(const Batch&, std::span<const double>, std::span<const double>);
template std::vector<float> spread_response_gradients<float>(const Batch&, std::span<const double>);
template std::vector<double> spread_response_gradients<double>(const Batch&, std::span<const double>);
template std::vector<ResponseLogp> score<float>(const Transformer<float>&, const ParameterSet<float>&, const Batch&,
                                                Workspace<float>&);
template std::vector<ResponseLogp> score<double>(const Transformer<double>&, const ParameterSet<double>&, const Batch&,
                                                 Workspace<double>&);
template void backprop<float>(const Transformer<float>&, const ParameterSet<float>&, const Batch&,
                              std::span<const double>, Workspace<float>&, ParameterSet<float>&);
template void backprop<double>(const Transformer<double>&, const ParameterSet<double>&, const Batch&,
                               std::span<const double>, Workspace<double>&, ParameterSet<double>&);

}  // namespace duet::engine
