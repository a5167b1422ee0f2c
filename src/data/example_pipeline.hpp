#pragma once
// One dataset line through every stage: parse -> chat template -> tokenize ->
// truncate -> length checks. Pure per line, so lines run in parallel.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/prepare_options.hpp"
#include "data/problem.hpp"
#include "data/template_choice.hpp"
#include "data/tokenizer_bundle.hpp"
#include "layout/example.hpp"

namespace duet::data {

struct LineContext {
  const PrepareOptions* options = nullptr;
  const TokenizerBundle* tokenizer = nullptr;  // may be null
  const TemplateChoice* choice = nullptr;
  std::string file;
};

struct LineOutcome {
  int64_t line = 0;
  std::vector<Problem> problems;  // non-empty: the example is dropped
  std::string drop_reason;        // dropped by the truncation policy
  std::optional<layout::TokenizedExample> example;  // kept (and tokenized)
  bool parsed_only = false;       // kept, but text without a tokenizer
  std::string format;             // e.g. "standard", "conversational (implicit prompt)"
  bool prompt_truncated = false;
  bool responses_truncated = false;
};

LineOutcome process_line(std::string_view line, int64_t line_number, const LineContext& ctx,
                         tok::EncodeState& state);

}  // namespace duet::data
