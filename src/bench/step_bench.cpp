#include "bench/step_bench.hpp"

#include <algorithm>
#include <chrono>
#include <map>

#include "layout/pack_rows.hpp"
#include "loss/loss.hpp"
#include "util/error.hpp"

namespace duet::bench {

namespace {

using Clock = std::chrono::steady_clock;
using Key = std::pair<int64_t, int32_t>;  // (example, response)

struct PreparedStep {
  std::vector<engine::Batch> batches;
  std::vector<std::vector<int64_t>> row_examples;  // examples of each row, in order
  StepWork work;
};

PreparedStep prepare(const std::vector<layout::TokenizedExample>& step, const StepBenchOptions& o, int64_t window) {
  PreparedStep p;
  for (const auto& row : layout::pack_examples(step, o.layout, o.pack_tokens, 0)) {
    p.batches.push_back(engine::make_batch(row));
    p.work.real_tokens += row.used;
    p.work.row_tokens += row.size();
    p.work.targets += p.batches.back().n_targets();
    p.work.visible_pairs += visible_pairs(row, window);
    std::vector<int64_t> ex;
    for (const auto& r : p.batches.back().responses)
      if (ex.empty() || ex.back() != r.example) ex.push_back(r.example);
    p.row_examples.push_back(std::move(ex));
  }
  return p;
}

// One DPO step: per row, reference and policy log-probs, the loss of the
// row's pairs (normalised by the step's N), backward.
void run_step(engine::Engine& engine, const PreparedStep& step, int64_t n_pairs, bool optimizer) {
  loss::LossConfig cfg;  // sigmoid, beta 0.1: TRL's default
  loss::LossState state;
  engine.zero_grad();
  for (const auto& b : step.batches) {
    std::map<Key, double> ref;
    if (engine.has_reference())
      for (const auto& r : engine.score_reference(b)) ref[{r.example, r.response}] = r.logp;
    std::map<Key, engine::ResponseLogp> pol;
    for (const auto& r : engine.score_policy(b)) pol[{r.example, r.response}] = r;
    std::vector<loss::PairLogps> pairs;
    std::vector<int64_t> order;
    for (const auto& [k, r] : pol) {
      if (k.second != 0) continue;
      const auto& rej = pol.at({k.first, 1});
      pairs.push_back({r.logp, rej.logp, ref.count(k) ? ref.at(k) : 0.0, ref.count({k.first, 1}) ? ref.at({k.first, 1}) : 0.0,
                       r.tokens, rej.tokens});
      order.push_back(k.first);
    }
    const auto result = loss::compute(cfg, pairs, state, n_pairs);
    std::map<int64_t, size_t> pair_of;
    for (size_t i = 0; i < order.size(); ++i) pair_of[order[i]] = i;
    std::vector<double> d;
    for (const auto& r : b.responses) {
      const auto& pr = result.pairs[pair_of.at(r.example)];
      d.push_back(r.response == 0 ? pr.d_policy_chosen : r.response == 1 ? pr.d_policy_rejected : 0.0);
    }
    engine.backprop(b, d);
  }
  if (optimizer) engine.optimizer_step(1e-7);
}

}  // namespace

std::string layout_label(const StepBenchOptions& o) {
  return std::string(layout::layout_name(o.layout)) + (o.pack_tokens > 0 ? "+packed" : "");
}

StepBenchResult run_step_bench(engine::Engine& engine, const std::vector<layout::TokenizedExample>& examples,
                               const StepBenchOptions& o) {
  if (examples.empty()) fail("bench: no examples");
  if (o.steps < 1 || o.warmup < 0) fail("bench: --steps must be >= 1 and --warmup >= 0");
  const auto& c = engine.config();
  const int64_t window = c.attention_window().value_or(0);
  const int total = o.warmup + o.steps;
  std::vector<PreparedStep> steps;
  double layout_seconds = 0;
  for (int s = 0; s < total; ++s) {
    std::vector<layout::TokenizedExample> chosen;
    for (int64_t i = 0; i < o.examples_per_step; ++i)
      chosen.push_back(examples[static_cast<size_t>((s * o.examples_per_step + i) % static_cast<int64_t>(examples.size()))]);
    const auto t0 = Clock::now();
    steps.push_back(prepare(chosen, o, window));
    layout_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  // As duet train does: the engine allocates (and the CUDA engine tunes its
  // products) for the longest row before the first step.
  int64_t tokens = 0, targets = 0;
  for (const PreparedStep& step : steps)
    for (const engine::Batch& b : step.batches)
      tokens = std::max(tokens, b.n_tokens() - b.padding), targets = std::max(targets, b.n_targets());
  engine.reserve(tokens, targets);
  std::vector<double> times;
  StepBenchResult r;
  engine.set_op_timing(o.breakdown);
  std::vector<std::pair<std::string, double>> op_seconds;
  for (int s = 0; s < total; ++s) {
    const auto t0 = Clock::now();
    run_step(engine, steps[static_cast<size_t>(s)], o.examples_per_step, o.optimizer);
    const double t = std::chrono::duration<double>(Clock::now() - t0).count();
    const auto ops = engine.take_op_seconds();  // per step, so warm-up steps are dropped
    if (s < o.warmup) continue;
    if (op_seconds.empty())
      for (const auto& [kind, sec] : ops) op_seconds.emplace_back(kind, 0.0);
    for (size_t k = 0; k < ops.size() && k < op_seconds.size(); ++k) op_seconds[k].second += ops[k].second;
    times.push_back(t);
    const auto& w = steps[static_cast<size_t>(s)].work;
    r.work.real_tokens += w.real_tokens, r.work.row_tokens += w.row_tokens;
    r.work.targets += w.targets, r.work.visible_pairs += w.visible_pairs;
    r.rows_per_step += static_cast<int64_t>(steps[static_cast<size_t>(s)].batches.size());
  }
  const auto n = static_cast<int64_t>(times.size());
  r.work.real_tokens /= n, r.work.row_tokens /= n, r.work.targets /= n, r.work.visible_pairs /= n;
  r.rows_per_step /= n;
  std::sort(times.begin(), times.end());
  r.step_seconds = times[times.size() / 2];
  r.spread = (times.back() - times.front()) / r.step_seconds;
  r.layout = layout_label(o);
  r.examples_per_step = o.examples_per_step;
  r.layout_seconds = layout_seconds / total;
  r.samples_per_second = static_cast<double>(o.examples_per_step) / r.step_seconds;
  r.real_tokens_per_second = static_cast<double>(r.work.real_tokens) / r.step_seconds;
  r.row_tokens_per_second = static_cast<double>(r.work.row_tokens) / r.step_seconds;
  r.tflops = step_flops(c, r.work, engine.has_reference(), true, o.trained) / r.step_seconds / 1e12;
  r.mfu = r.tflops / o.peak_tflops;
  r.memory_gib = engine.device_memory_gib();
  engine.set_op_timing(false);
  if (o.breakdown && !op_seconds.empty()) {
    double device = 0;
    for (auto& [kind, sec] : op_seconds) sec /= static_cast<double>(n), device += sec;
    op_seconds.emplace_back("host/idle", std::max(0.0, r.step_seconds - device));
    r.breakdown = std::move(op_seconds);
  }
  return r;
}

}  // namespace duet::bench
