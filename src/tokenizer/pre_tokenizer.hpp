#pragma once
// Pre-tokenizers cut normalized text into the words the model encodes (HF
// `pre_tokenizer`): Split (regex or string, five behaviors, invert),
// ByteLevel, Metaspace, Digits, Punctuation, Whitespace, WhitespaceSplit and
// Sequence. Each transforms a PieceList in place, using `scratch`.
#include <memory>

#include <nlohmann/json.hpp>

#include "tokenizer/pieces.hpp"

namespace duet::tok {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void apply(PieceList& pieces, PieceList& scratch) const = 0;
};

// How matches of a pattern become pieces (HF SplitDelimiterBehavior).
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// nullptr for a JSON null; duet::Error naming the type for anything unsupported.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& spec);

}  // namespace duet::tok
