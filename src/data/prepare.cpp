#include "data/prepare.hpp"

#include <algorithm>

#include "data/example_pipeline.hpp"
#include "data/line_reader.hpp"
#include "data/template_choice.hpp"
#include "util/error.hpp"
#include "util/parallel.hpp"

namespace duet::data {

namespace {

constexpr size_t kBlockBytes = 32 << 20;

bool is_blank(const std::string& line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

// Reads the next block of non-blank lines; false when the file is exhausted.
bool read_block(LineReader& reader, size_t max_lines, std::vector<std::string>& lines, std::vector<int64_t>& numbers) {
  lines.clear();
  numbers.clear();
  size_t bytes = 0;
  std::string line;
  while (lines.size() < max_lines && bytes < kBlockBytes && reader.next(line)) {
    if (is_blank(line)) continue;
    bytes += line.size();
    lines.push_back(std::move(line));
    numbers.push_back(reader.line_number());
  }
  return !lines.empty();
}

void merge(LineOutcome& o, DataReport& report, PreparedBlock& block) {
  ++report.examples_read;
  if (!o.format.empty()) ++report.formats[o.format];
  report.prompt_truncated += o.prompt_truncated;
  report.responses_truncated += o.responses_truncated;
  if (!o.problems.empty()) {
    ++report.dropped[o.problems.front().kind];
    for (auto& p : o.problems) report.problems.push_back(std::move(p));
    return;
  }
  if (!o.drop_reason.empty()) {
    ++report.dropped[o.drop_reason];
    return;
  }
  ++report.kept;
  if (o.example) {
    o.example->index = static_cast<int64_t>(report.kept - 1);
    block.examples.push_back(std::move(*o.example));
    block.lines.push_back(o.line);
  }
}

}  // namespace

DataReport prepare_stream(const std::filesystem::path& file, const PrepareOptions& options,
                          const TokenizerBundle* tokenizer, const std::function<void(PreparedBlock&&)>& consume) {
  check_truncation(options.truncation);
  if (options.pack_tokens < 0) fail("--pack-tokens must be >= 0 (0 = no packing check), got {}", options.pack_tokens);
  DataReport report;
  report.file = file.string();
  report.tokenized = tokenizer != nullptr;
  report.truncation = options.truncation;
  const TemplateChoice choice = choose_template(options.chat_template, tokenizer ? &tokenizer->config : nullptr);
  report.template_description = tokenizer ? choice.description : "none (no tokenizer)";
  if (tokenizer && !tokenizer->eos_id)
    report.notes.push_back("the tokenizer has no eos_token (no tokenizer_config.json?): plain-text responses end "
                           "without EOS");
  if (!tokenizer && !options.require_tokens)
    report.notes.push_back("no tokenizer: text examples were parsed and checked, not templated or tokenized");

  LineReader reader(file);
  report.compression = std::string(reader.compression());
  const LineContext ctx{&options, tokenizer, &choice, report.file};
  const unsigned threads = resolve_threads(options.threads);
  std::vector<tok::EncodeState> states(threads);
  std::vector<std::string> lines;
  std::vector<int64_t> numbers;
  std::vector<LineOutcome> outcomes;
  while (read_block(reader, std::max<size_t>(options.block_lines, 1), lines, numbers)) {
    outcomes.assign(lines.size(), LineOutcome{});
    parallel_chunks(lines.size(), threads, [&](unsigned t, size_t begin, size_t end) {
      for (size_t i = begin; i < end; ++i) outcomes[i] = process_line(lines[i], numbers[i], ctx, states[t]);
    });
    PreparedBlock block;
    for (auto& o : outcomes) merge(o, report, block);
    if (!block.examples.empty()) consume(std::move(block));
  }
  const bool has_text = std::any_of(report.formats.begin(), report.formats.end(),
                                    [](const auto& f) { return f.first.starts_with("standard"); });
  if (has_text && choice.chat_template && !choice.apply_to_text)
    report.notes.push_back("plain-text (standard) examples were used as they are, with BOS/EOS from the tokenizer; "
                           "pass --chat-template NAME to render them as one user and one assistant turn");
  return report;
}

PreparedDataset prepare_dataset(const std::filesystem::path& file, const PrepareOptions& options,
                                const TokenizerBundle* tokenizer, OnError on_error) {
  PreparedDataset out;
  out.report = prepare_stream(file, options, tokenizer, [&](PreparedBlock&& block) {
    std::move(block.examples.begin(), block.examples.end(), std::back_inserter(out.examples));
    out.lines.insert(out.lines.end(), block.lines.begin(), block.lines.end());
  });
  enforce_on_error(out.report, on_error);
  return out;
}

}  // namespace duet::data
