#pragma once
// The post-processor adds special tokens around an encoded text when HF's
// add_special_tokens=True (TemplateProcessing, BertProcessing,
// RobertaProcessing, Sequence). ByteLevel's post-processor only trims
// offsets, which duet does not track, so it adds nothing.
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/model.hpp"

namespace duet::tok {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Rewrites `ids` (a single sequence) with the special tokens added.
  virtual void add_special_tokens(std::vector<TokenId>& ids) const = 0;
};

// nullptr for JSON null.
std::unique_ptr<PostProcessor> make_post_processor(const nlohmann::json& spec);

}  // namespace duet::tok
