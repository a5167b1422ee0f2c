#pragma once
// Whether a tokenizer and a tokenized dataset fit a model's vocabulary,
// checked at the boundary with file:line, rather than deep inside a packed row.
#include <cstdint>
#include <string>

#include "data/prepare.hpp"
#include "data/tokenizer_bundle.hpp"

namespace duet::data {

// duet::fail when the tokenizer has ids the model cannot embed.
void check_tokenizer_fits(const TokenizerBundle& bundle, int64_t vocab_size, const std::string& model);

// duet::fail naming file:line and the segment of the first id >= vocab_size.
void check_token_ids(const PreparedDataset& dataset, const std::string& data_file, int64_t vocab_size,
                     const std::string& model);

}  // namespace duet::data
