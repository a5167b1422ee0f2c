#pragma once
// A RawExample (text or conversation) -> the texts to tokenize: the prompt
// and each response, as TRL prepares them.
//   With a chat template: prompt = render(prompt, add_generation_prompt);
//   response r = render(prompt + response_r) minus the prompt text, i.e. the
//   assistant turn with its end-of-turn exactly as the template writes it
//   (the prompt is first cut to its longest common prefix with every full
//   rendering, as TRL does, so it always is a prefix).
//   Without: the texts as they are; the tokenizer adds its special tokens to
//   the prompt (BOS, as HF tokenizer(prompt) would) and EOS ends each response.
#include <optional>
#include <string>
#include <vector>

#include "data/raw_example.hpp"
#include "data/read_fields.hpp"
#include "data/template_choice.hpp"

namespace duet::data {

struct RenderedExample {
  std::string prompt;
  std::vector<std::string> responses;
  bool plain_text = false;  // no template: add BOS to the prompt, EOS to responses
};

// For standard and conversational examples. A conversation the template
// rejects becomes a Problem; conversational data without any template is a
// configuration error (duet::fail naming the line and what to pass).
std::optional<RenderedExample> render_example(const RawExample& example, const TemplateChoice& choice,
                                              std::string_view file, ProblemSink& sink);

}  // namespace duet::data
