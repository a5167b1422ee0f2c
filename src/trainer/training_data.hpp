#pragma once
// The examples of a run: the dataset prepared (parsed, templated, tokenized,
// truncated) exactly as `duet train` and `duet ref` both need it, and split
// into train and eval.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "layout/example.hpp"
#include "model/config.hpp"
#include "trainer/options.hpp"

namespace duet::trainer {

struct TrainingData {
  std::vector<layout::TokenizedExample> train, eval;
  std::filesystem::path tokenizer_dir;  // empty: pre-tokenized data, no tokenizer
  // What preparing --data (and --eval-data) did, for the run's first lines.
  int64_t examples_read = 0, prompts_truncated = 0, responses_truncated = 0;
  std::map<std::string, int64_t> dropped;  // reason -> examples
  std::string summary() const;  // "N examples read; X prompts and Y responses truncated; Z dropped (...)"
};

TrainingData load_training_data(const TrainOptions& options, const model::ModelConfig& config);

}  // namespace duet::trainer
