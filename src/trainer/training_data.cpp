#include "trainer/training_data.hpp"

#include <cmath>
#include <optional>

#include "data/model_fit.hpp"
#include "data/prepare.hpp"
#include "data/tokenizer_bundle.hpp"
#include "layout/shuffle.hpp"
#include "util/error.hpp"

namespace duet::trainer {

namespace fs = std::filesystem;

namespace {

std::vector<layout::TokenizedExample> prepare(const fs::path& file, const TrainOptions& o,
                                              const data::TokenizerBundle* tok, int64_t vocab_size) {
  data::PrepareOptions p;
  p.chat_template = o.chat_template;
  p.truncation = {o.max_length, o.max_prompt_length};
  p.pack_tokens = o.pack_tokens;
  p.pack_layout = o.layout;
  p.threads = static_cast<unsigned>(o.threads);
  auto d = data::prepare_dataset(file, p, tok, o.skip_bad_examples ? data::OnError::skip : data::OnError::fail);
  data::check_token_ids(d, file.string(), vocab_size, o.model.string());
  return std::move(d.examples);
}

}  // namespace

TrainingData load_training_data(const TrainOptions& o, const model::ModelConfig& config) {
  TrainingData d;
  // Empty tokenizer_dir: no tokenizer (pre-tokenized data).
  auto tok = data::load_model_tokenizer(o.tokenizer, o.model, config.vocab_size, &d.tokenizer_dir);
  auto all = prepare(o.data, o, tok ? &*tok : nullptr, config.vocab_size);
  if (!o.eval_data.empty()) {
    d.train = std::move(all);
    d.eval = prepare(o.eval_data, o, tok ? &*tok : nullptr, config.vocab_size);
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
