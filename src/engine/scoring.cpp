#include "engine/scoring.hpp"

#include "util/error.hpp"

namespace duet::engine {

template <typename T>
std::vector<ResponseLogp> score(const Transformer<T>& model, const ParameterSet<T>& params, const Batch& batch,
                                Workspace<T>& ws) {
  auto logp = model.forward(batch, params, ws);
  std::vector<ResponseLogp> out;
  out.reserve(batch.responses.size());
  for (const auto& r : batch.responses) {
    double sum = 0;  // accumulate in double: a response may have thousands of tokens
    for (int32_t t = r.first; t < r.first + r.num_tokens; ++t) sum += static_cast<double>(logp[static_cast<size_t>(t)]);
    out.push_back({r.example, r.response, sum, r.num_tokens});
  }
  return out;
}

template <typename T>
void backprop(const Transformer<T>& model, const ParameterSet<T>& params, const Batch& batch,
              std::span<const double> d_response, Workspace<T>& ws, ParameterSet<T>& grads) {
  if (d_response.size() != batch.responses.size()) fail("internal: one gradient per response expected");
  std::vector<T> d_logp(static_cast<size_t>(batch.n_targets()), T(0));
  for (size_t k = 0; k < batch.responses.size(); ++k) {
    const auto& r = batch.responses[k];
    for (int32_t t = r.first; t < r.first + r.num_tokens; ++t) d_logp[static_cast<size_t>(t)] = static_cast<T>(d_response[k]);
  }
  model.backward(batch, params, d_logp, ws, grads);
}

template std::vector<ResponseLogp> score<float>(const Transformer<float>&, const ParameterSet<float>&, const Batch&,
                                                Workspace<float>&);
template std::vector<ResponseLogp> score<double>(const Transformer<double>&, const ParameterSet<double>&, const Batch&,
                                                 Workspace<double>&);
template void backprop<float>(const Transformer<float>&, const ParameterSet<float>&, const Batch&,
                              std::span<const double>, Workspace<float>&, ParameterSet<float>&);
template void backprop<double>(const Transformer<double>&, const ParameterSet<double>&, const Batch&,
                               std::span<const double>, Workspace<double>&, ParameterSet<double>&);

}  // namespace duet::engine
