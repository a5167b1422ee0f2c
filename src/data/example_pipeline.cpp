#include "data/example_pipeline.hpp"

#include <fmt/format.h>

#include "data/parse_example.hpp"
#include "data/render_example.hpp"
#include "util/error.hpp"

namespace duet::data {

namespace {

std::string format_label(const RawExample& ex) {
  std::string s(format_name(ex.format));
  if (ex.ranked) s += " (ranked)";
  if (ex.implicit_prompt) s += " (implicit prompt)";
  return s;
}

std::string response_field(const RawExample& ex, const ColumnNames& c, size_t r) {
  if (ex.ranked) return fmt::format("{}[{}]", c.responses, r);
  if (ex.format == Format::pretokenized) return r == 0 ? c.chosen_ids : c.rejected_ids;
  return r == 0 ? c.chosen : c.rejected;
}

// Ids given in the file must exist in the tokenizer's vocabulary.
bool check_vocabulary(const RawExample& ex, size_t vocab, const ColumnNames& c, ProblemSink& sink) {
  auto check = [&](const std::vector<uint32_t>& ids, const std::string& field) {
    for (size_t i = 0; i < ids.size(); ++i)
      if (ids[i] >= vocab) {
        sink.add(problem::token_id, fmt::format("{}[{}]", field, i),
                 fmt::format("token id {} is outside the tokenizer's vocabulary (0..{}); was the data tokenized with "
                             "another tokenizer?",
                             ids[i], vocab - 1));
        return false;
      }
    return true;
  };
  bool ok = check(ex.prompt_ids, c.prompt_ids);
  for (size_t r = 0; r < ex.response_ids.size() && ok; ++r) ok = check(ex.response_ids[r], response_field(ex, c, r));
  return ok;
}

layout::TokenizedExample encode(const RenderedExample& rendered, const TokenizerBundle& tb, tok::EncodeState& state) {
  layout::TokenizedExample out;
  out.prompt = tb.tokenizer.encode(rendered.prompt, rendered.plain_text, state);
  for (const auto& text : rendered.responses) {
    auto ids = tb.tokenizer.encode(text, false, state);
    if (rendered.plain_text && tb.eos_id) ids.push_back(*tb.eos_id);
    out.responses.push_back(std::move(ids));
  }
  return out;
}

}  // namespace

LineOutcome process_line(std::string_view line, int64_t line_number, const LineContext& ctx, tok::EncodeState& state) {
  const PrepareOptions& o = *ctx.options;
  LineOutcome out;
  out.line = line_number;
  ParsedLine parsed = parse_example_line(line, line_number, o.columns);
  out.problems = std::move(parsed.problems);
  if (!parsed.example) return out;
  const RawExample& ex = *parsed.example;
  out.format = format_label(ex);
  ProblemSink sink(line_number, out.problems);

  layout::TokenizedExample tokens;
  if (ex.format == Format::pretokenized) {
    if (ctx.tokenizer && !check_vocabulary(ex, ctx.tokenizer->tokenizer.vocab_size(), o.columns, sink)) return out;
    tokens.prompt = ex.prompt_ids;
    tokens.responses = ex.response_ids;
  } else if (!ctx.tokenizer) {
    if (o.require_tokens)
      fail("{}:{}: text examples need a tokenizer and none was found (no --tokenizer, and no tokenizer.json "
           "in the model folder if one was given); pass --tokenizer PATH (a tokenizer.json or its folder)", ctx.file,
           line_number);
    out.parsed_only = true;
    return out;
  } else {
    auto rendered = render_example(ex, *ctx.choice, ctx.file, sink);
    if (!rendered) return out;
    tokens = encode(*rendered, *ctx.tokenizer, state);
    if (tokens.prompt.empty()) {
      sink.add(problem::empty, o.columns.prompt, "gives no tokens");
      return out;
    }
  }

  TruncationOutcome t = truncate_example(tokens, o.truncation);
  out.prompt_truncated = t.prompt_truncated;
  out.responses_truncated = t.responses_truncated;
  if (!t.drop_reason.empty()) {
    out.drop_reason = t.drop_reason;
    return out;
  }
  if (o.pack_tokens > 0) {
    const int64_t unit = layout::unit_tokens(tokens, o.pack_layout);
    if (unit > o.pack_tokens) {
      std::string sizes;
      for (const auto& r : tokens.responses) sizes += fmt::format(" + {}", r.size());
      sink.add(problem::too_long, "(example)",
               fmt::format("needs {} tokens in the {} layout (prompt {}{}{}) but --pack-tokens is {}; raise "
                           "--pack-tokens or cap lengths with --max-length / --max-prompt-length",
                           unit, layout::layout_name(o.pack_layout), tokens.prompt.size(),
                           o.pack_layout == layout::Layout::paired ? fmt::format(" x {}", tokens.responses.size()) : "",
                           sizes, o.pack_tokens));
      return out;
    }
  }
  out.example = std::move(tokens);
  return out;
}

}  // namespace duet::data
