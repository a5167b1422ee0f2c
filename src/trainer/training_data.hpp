#pragma once
// The examples of a run: the dataset prepared (parsed, templated, tokenized,
// truncated) exactly as `duet train` and `duet ref` both need it, and split
// into train and eval.
#include <filesystem>
#include <vector>

#include "layout/example.hpp"
#include "model/config.hpp"
#include "trainer/options.hpp"

namespace duet::trainer {

struct TrainingData {
  std::vector<layout::TokenizedExample> train, eval;
  std::filesystem::path tokenizer_dir;  // empty: pre-tokenized data, no tokenizer
};

TrainingData load_training_data(const TrainOptions& options, const model::ModelConfig& config);

}  // namespace duet::trainer
