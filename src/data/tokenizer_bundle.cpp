#include "data/tokenizer_bundle.hpp"

#include "util/error.hpp"

namespace duet::data {

TokenizerBundle load_tokenizer_bundle(const std::filesystem::path& path) {
  TokenizerBundle b{tok::Tokenizer::load(path), read_tokenizer_config(path), std::nullopt};
  if (b.config.eos_token) {
    b.eos_id = b.tokenizer.token_to_id(*b.config.eos_token);
    if (!b.eos_id)
      fail("{}: eos_token '{}' is not in the tokenizer's vocabulary ({}); fix the config or pass another tokenizer",
           b.config.file.string(), *b.config.eos_token, b.tokenizer.origin());
  }
  return b;
}

}  // namespace duet::data
