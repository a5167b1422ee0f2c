#include "trainer/training_data.hpp"

#include <cmath>
#include <optional>

#include "data/model_fit.hpp"
#include "data/prepare.hpp"
#include "data/tokenizer_bundle.hpp"
#include "layout/shuffle.hpp"
#include "util/error.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace duet::trainer {

namespace fs = std::filesystem;

namespace {

std::vector<layout::TokenizedExample> prepare(const fs::path& file, const TrainOptions& o,
                                              const data::TokenizerBundle* tok, int64_t vocab_size, TrainingData& into) {
  data::PrepareOptions p;
  p.chat_template = o.chat_template;
  p.truncation = {o.max_length, o.effective_max_prompt_length()};
  p.pack_tokens = o.pack_tokens;
  p.pack_layout = o.layout;
  p.threads = static_cast<unsigned>(o.threads);
  auto d = data::prepare_dataset(file, p, tok, o.skip_bad_examples ? data::OnError::skip : data::OnError::fail);
  data::check_token_ids(d, file.string(), vocab_size, o.model.string());
  into.examples_read += d.report.examples_read;
  into.prompts_truncated += d.report.prompt_truncated;
  into.responses_truncated += d.report.responses_truncated;
  for (const auto& [reason, n] : d.report.dropped) into.dropped[reason] += n;
  return std::move(d.examples);
}

}  // namespace

std::string TrainingData::summary() const {
  int64_t dropped_total = 0;
  std::vector<std::string> reasons;
  for (const auto& [reason, n] : dropped) {
    dropped_total += n;
    reasons.push_back(fmt::format("{} {}", n, reason));
  }
  std::string s = fmt::format("{} examples read; {} prompts and {} examples' responses truncated; {} dropped",
                              examples_read, prompts_truncated, responses_truncated, dropped_total);
  if (!reasons.empty()) s += fmt::format(" ({})", fmt::join(reasons, ", "));
  return s;
}

TrainingData load_training_data(const TrainOptions& o, const model::ModelConfig& config) {
  TrainingData d;
  // Empty tokenizer_dir: no tokenizer (pre-tokenized data).
  auto tok = data::load_model_tokenizer(o.tokenizer, o.model, config.vocab_size, &d.tokenizer_dir);
  auto all = prepare(o.data, o, tok ? &*tok : nullptr, config.vocab_size, d);
  if (all.empty())
    fail("{}: no example left to train on: {}; {}", o.data.string(), d.summary(),
         d.dropped.count(std::string(data::drop_reason::prompt_fills_max_length))
             ? fmt::format("the prompts fill --max-length {} (--max-prompt-length {}): raise --max-length",
                           o.max_length, o.effective_max_prompt_length())
             : std::string("see each example's problem with duet data check --data ") + o.data.string());
  if (!o.eval_data.empty()) {
    d.train = std::move(all);
    d.eval = prepare(o.eval_data, o, tok ? &*tok : nullptr, config.vocab_size, d);
  } else if (o.eval_fraction > 0) {
    // A seeded split: the same examples are held out on every run and resume.
    auto order = layout::epoch_permutation(all.size(), o.seed ^ 0x5eedULL, 0);
    const auto n_eval = static_cast<size_t>(std::ceil(o.eval_fraction * static_cast<double>(order.size())));
    std::vector<bool> is_eval(order.size(), false);
    for (size_t i = 0; i < n_eval; ++i) is_eval[order[i]] = true;
    for (size_t i = 0; i < all.size(); ++i) (is_eval[i] ? d.eval : d.train).push_back(std::move(all[i]));
  } else {
    d.train = std::move(all);
  }
  if (d.train.empty()) fail("{}: no training examples left", o.data.string());
  return d;
}

}  // namespace duet::trainer
