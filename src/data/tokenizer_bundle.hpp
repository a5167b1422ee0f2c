#pragma once
// A tokenizer with the config files next to it (special tokens, chat template).
#include <filesystem>
#include <optional>

#include "data/tokenizer_config.hpp"
#include "tokenizer/tokenizer.hpp"

namespace duet::data {

struct TokenizerBundle {
  tok::Tokenizer tokenizer;
  TokenizerConfig config;
  std::optional<tok::TokenId> eos_id;  // config's eos_token, when it is in the vocabulary
};

// `path`: a tokenizer.json, or a (model) folder holding tokenizer.json and
// usually tokenizer_config.json. duet::fail as Tokenizer::load does.
TokenizerBundle load_tokenizer_bundle(const std::filesystem::path& path);

}  // namespace duet::data
