// duet data stats | check: read a preference dataset the way training will
// (formats, chat template, tokenization, truncation) and report token totals
// per layout, or every problem with file:line.
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "data/prepare.hpp"
#include "data/stats.hpp"
#include "util/error.hpp"

namespace duet::cli {

namespace {

struct DataOptions {
  std::string data;
  std::string tokenizer;
  std::string model;
  int64_t max_length = data::kDefaultMaxLength;  // the defaults of every command
  int64_t max_prompt_length = data::kAutoMaxPromptLength;
  int64_t pack_tokens = 0;
  std::string chat_template = "auto";
  std::vector<std::string> columns;
  std::string on_error = "fail";
  unsigned threads = 0;
  bool json = false;
};

std::optional<data::TokenizerBundle> load_tokenizer(const DataOptions& o) {
  if (!o.model.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(o.model, ec))
      fail("--model {}: not a folder; pass the model folder (holding tokenizer.json), or use --tokenizer", o.model);
    return data::load_tokenizer_bundle(o.model);
  }
  if (!o.tokenizer.empty()) return data::load_tokenizer_bundle(o.tokenizer);
  return std::nullopt;
}

data::PrepareOptions prepare_options(const DataOptions& o, bool require_tokens) {
  data::PrepareOptions p;
  p.columns.apply(o.columns);
  p.chat_template = o.chat_template;
  p.truncation = data::resolve_truncation(o.max_length, o.max_prompt_length);
  p.pack_tokens = o.pack_tokens;
  p.threads = o.threads;
  p.require_tokens = require_tokens;
  return p;
}

void print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (std::fflush(stdout) != 0) fail("cannot write to standard output");
}

int run_stats(const DataOptions& o) {
  const data::OnError on_error = data::parse_on_error(o.on_error);
  auto tokenizer = load_tokenizer(o);
  std::vector<layout::ExampleShape> shapes;
  data::DataReport report = data::prepare_stream(
      o.data, prepare_options(o, true), tokenizer ? &*tokenizer : nullptr, [&](data::PreparedBlock&& block) {
        for (const auto& ex : block.examples) shapes.push_back(layout::shape_of(ex));
      });
  if (on_error == data::OnError::fail) {
    // Say where the first problems are before failing with their count.
    for (size_t i = 0; i < std::min<size_t>(report.problems.size(), 20); ++i)
      std::fprintf(stderr, "%s\n", data::format_problem(report.file, report.problems[i]).c_str());
    data::enforce_on_error(report, on_error);
  }
  if (shapes.empty())
    fail("{}: no usable examples ({} read, {} dropped); `duet data check --data {}` lists the problems", o.data,
         report.examples_read, report.dropped_total(), o.data);
  const data::DatasetStats stats = data::compute_stats(shapes, o.pack_tokens);
  print(o.json ? data::stats_json(report, &stats).dump(2) + "\n" : data::stats_text(report, &stats));
  return 0;
}

int run_check(const DataOptions& o) {
  auto tokenizer = load_tokenizer(o);
  data::DataReport report = data::prepare_stream(o.data, prepare_options(o, false),
                                                 tokenizer ? &*tokenizer : nullptr, [](data::PreparedBlock&&) {});
  if (o.json) {
    nlohmann::json problems = nlohmann::json::array();
    for (const auto& p : report.problems)
      problems.push_back({{"line", p.line}, {"field", p.field}, {"kind", p.kind}, {"message", p.message}});
    nlohmann::json j = {{"file", report.file},
                        {"chat_template", report.template_description},
                        {"tokenized", report.tokenized},
                        {"examples_read", report.examples_read},
                        {"examples", report.kept},
                        {"dropped", report.dropped_total()},
                        {"dropped_by_reason", report.dropped},
                        {"truncated", {{"prompt", report.prompt_truncated}, {"responses", report.responses_truncated}}},
                        {"formats", report.formats},
                        {"notes", report.notes},
                        {"problems", problems}};
    print(j.dump(2) + "\n");
  } else {
    std::string out;
    for (const auto& p : report.problems) out += data::format_problem(report.file, p) + "\n";
    out += fmt::format("{}: {} examples read, {} problem{}, {} usable", report.file, report.examples_read,
                       report.problems.size(), report.problems.size() == 1 ? "" : "s", report.kept);
    if (report.dropped.count(std::string(data::drop_reason::prompt_fills_max_length)) ||
        report.dropped.count(std::string(data::drop_reason::identical_after_truncation)))
      out += " (some dropped by truncation, see `duet data stats`)";
    out += "\n";
    for (const auto& note : report.notes) out += fmt::format("note: {}\n", note);
    print(out);
  }
  return report.problems.empty() ? 0 : 1;
}

void add_common(CLI::App* sub, const std::shared_ptr<DataOptions>& o) {
  sub->add_option("--data", o->data, "dataset: .jsonl, .jsonl.gz or .jsonl.zst")->required();
  auto* tok = sub->add_option("--tokenizer", o->tokenizer, "tokenizer.json, or a folder holding it");
  auto* model = sub->add_option("--model", o->model, "model folder (its tokenizer.json and tokenizer_config.json)");
  tok->excludes(model);
  sub->add_option("--max-length", o->max_length, "cap on prompt + each response, in tokens (default 1024, as every command; 0 = no limit)");
  sub->add_option("--max-prompt-length", o->max_prompt_length, "cap on the prompt, keeping its end (default -1: min(512, max-length / 2); 0 = no limit)");
  sub->add_option("--pack-tokens", o->pack_tokens, "row length for packing; longer examples are problems");
  sub->add_option("--chat-template", o->chat_template,
                  "auto (recognise the tokenizer's), none, or llama3, llama3.1, llama2, mistral, chatml, qwen2, "
                  "qwen2.5, qwen3");
  sub->add_option("--column", o->columns, "ROLE=KEY: read ROLE (prompt, chosen, rejected, responses, "
                                          "*_input_ids) from column KEY");
  sub->add_option("--threads", o->threads, "worker threads (0 = all cores)");
  sub->add_flag("--json", o->json, "one JSON object on standard output");
}

}  // namespace

Command add_data(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "Inspect preference datasets: token statistics, validation");
  data->require_subcommand(1);
  auto stats_o = std::make_shared<DataOptions>();
  CLI::App* stats = data->add_subcommand(
      "stats", "Lengths, truncation and token totals of the paired, shared and packed layouts");
  add_common(stats, stats_o);
  stats->add_option("--on-error", stats_o->on_error, "fail (default: stop, counting the problems) or skip");
  auto check_o = std::make_shared<DataOptions>();
  CLI::App* check = data->add_subcommand("check", "Validate a dataset and list every problem with file:line");
  add_common(check, check_o);
  return {data, [=] { return stats->parsed() ? run_stats(*stats_o) : run_check(*check_o); }};
}

}  // namespace duet::cli
