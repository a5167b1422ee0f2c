#pragma once
// Dataset file -> tokenized preference examples, streamed: lines are read a
// block at a time (the raw file is never held whole), each block is parsed,
// templated, tokenized and truncated on all cores, and handed on in file
// order. Kept examples are numbered 0, 1, ... (TokenizedExample::index) in
// file order; `lines` maps them back to the file.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

#include "data/prepare_options.hpp"
#include "data/report.hpp"
#include "data/tokenizer_bundle.hpp"
#include "layout/example.hpp"

namespace duet::data {

struct PreparedBlock {
  std::vector<layout::TokenizedExample> examples;
  std::vector<int64_t> lines;  // 1-based line of each example
};

// Runs the whole file through the pipeline, calling `consume` once per block.
// `tokenizer` may be null (pre-tokenized data; or with require_tokens false,
// text is only parsed). Problems are collected in the report, not thrown: the
// caller applies --on-error (enforce_on_error). duet::fail on configuration
// errors (unreadable file, conversational data without a chat template, ...).
DataReport prepare_stream(const std::filesystem::path& file, const PrepareOptions& options,
                          const TokenizerBundle* tokenizer, const std::function<void(PreparedBlock&&)>& consume);

struct PreparedDataset {
  std::vector<layout::TokenizedExample> examples;
  std::vector<int64_t> lines;
  DataReport report;
};

// prepare_stream collecting everything, then enforce_on_error.
PreparedDataset prepare_dataset(const std::filesystem::path& file, const PrepareOptions& options,
                                const TokenizerBundle* tokenizer, OnError on_error);

}  // namespace duet::data
