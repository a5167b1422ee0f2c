#pragma once
// Whether a tokenizer and a tokenized dataset fit a model's vocabulary,
// checked at the boundary with file:line, rather than deep inside a packed row.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "data/prepare.hpp"
#include "data/tokenizer_bundle.hpp"

namespace duet::data {

// The tokenizer of a model command: `tokenizer` (a tokenizer.json or a folder
// holding one) when given, else the model folder's own tokenizer.json, else
// none (pre-tokenized data needs none). Refused when it can emit ids the
// model lacks. `folder`, when given, receives the folder its files are in.
std::optional<TokenizerBundle> load_model_tokenizer(const std::filesystem::path& tokenizer,
                                                    const std::filesystem::path& model, int64_t vocab_size,
                                                    std::filesystem::path* folder = nullptr);

// duet::fail when the tokenizer has ids the model cannot embed.
void check_tokenizer_fits(const TokenizerBundle& bundle, int64_t vocab_size, const std::string& model);

// duet::fail naming file:line and the segment of the first id >= vocab_size.
void check_token_ids(const PreparedDataset& dataset, const std::string& data_file, int64_t vocab_size,
                     const std::string& model);

}  // namespace duet::data
