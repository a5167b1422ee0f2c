#pragma once
// Shared helpers for tokenizer tests: build components from JSON literals and
// run them on a string.
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/seeds.hpp"
#include "tokenizer/pre_tokenizer.hpp"

namespace duet::tok::testing {

inline std::vector<std::string> pre_tokenize(const PreTokenizer& p, const std::string& text) {
  PieceList pieces, scratch;
  pieces.add(text, true);
  p.apply(pieces, scratch);
  std::vector<std::string> out;
  for (const auto& piece : pieces.pieces) out.emplace_back(pieces.view(piece));
  return out;
}

inline std::vector<std::string> pre_tokenize(const std::string& spec, const std::string& text) {
  return pre_tokenize(*make_pre_tokenizer(nlohmann::json::parse(spec)), text);
}

using ::duet::test::fresh_seed;

}  // namespace duet::tok::testing
