// duet logprobs: the sequence log-prob of every response of a dataset under a
// model (fp32 CPU engine), one JSON line per example in input order. The
// layout and packing change only speed, never the numbers, which makes this
// the command that checks duet against transformers.
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "dist/launch.hpp"
#include "data/model_fit.hpp"
#include "data/prepare.hpp"
#include "engine/engine.hpp"
#include "engine/lora_files.hpp"
#include "layout/pack_rows.hpp"
#include "model/config.hpp"
#include "util/error.hpp"
#include "util/parallel.hpp"

// OpenBLAS keeps its own thread pool, outside OpenMP's control.
extern "C" void openblas_set_num_threads(int num_threads);

namespace duet::cli {

namespace {

namespace fs = std::filesystem;

struct LogprobsOptions {
  std::string model;
  std::string data;
  std::string layout = "paired";
  int64_t pack_tokens = 0;
  std::string tokenizer;
  int64_t max_length = data::kDefaultMaxLength;  // the defaults of every command
  int64_t max_prompt_length = data::kAutoMaxPromptLength;
  std::string chat_template = "auto";
  std::vector<std::string> columns;
  std::string on_error = "fail";
  unsigned threads = 0;
  std::string device = "auto";
  std::string adapter;  // a PEFT adapter folder applied on --model
};

// Examples scored per round: bounds the rows held at once, and packing
// still has plenty to choose from.
constexpr size_t kChunkExamples = 1024;

// JSON has no inf/nan: a non-finite log-prob (overflowing weights) is null.
std::string number(double v) { return std::isfinite(v) ? fmt::format("{:.17g}", v) : "null"; }

std::string json_line(const std::vector<engine::ResponseLogp>& rs, int64_t line) {
  std::string s = fmt::format(R"({{"chosen_logp": {}, "rejected_logp": {}, "chosen_tokens": {}, "rejected_tokens": {})",
                              number(rs[0].logp), number(rs[1].logp), rs[0].tokens, rs[1].tokens);
  if (rs.size() > 2) {
    s += R"(, "responses": [)";
    for (size_t r = 0; r < rs.size(); ++r)
      s += fmt::format(R"({}{{"logp": {}, "tokens": {}}})", r ? ", " : "", number(rs[r].logp), rs[r].tokens);
    s += "]";
  }
  return s + fmt::format(R"(, "line": {}}})", line) + "\n";
}

void print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (std::fflush(stdout) != 0) fail("cannot write to standard output");
}

void set_threads(unsigned requested) {
  if (requested == 0) return;  // all cores: the libraries' default
  omp_set_num_threads(static_cast<int>(requested));
  openblas_set_num_threads(static_cast<int>(requested));
}

int run_logprobs(const LogprobsOptions& o) {
  dist::require_one_process("duet logprobs");
  const layout::Layout lay = layout::parse_layout(o.layout);
  const data::OnError on_error = data::parse_on_error(o.on_error);
  model::require_model_folder(o.model, "--model");
  set_threads(o.threads);
  const model::ModelConfig config = model::load_config(o.model);
  auto tokenizer = data::load_model_tokenizer(o.tokenizer, o.model, config.vocab_size);

  data::PrepareOptions p;
  p.columns.apply(o.columns);
  p.chat_template = o.chat_template;
  p.truncation = data::resolve_truncation(o.max_length, o.max_prompt_length);
  p.pack_tokens = o.pack_tokens;
  p.pack_layout = lay;
  p.threads = o.threads;
  const data::PreparedDataset d =
      data::prepare_dataset(o.data, p, tokenizer ? &*tokenizer : nullptr, on_error);
  if (d.examples.empty())
    fail("{}: no usable examples ({} read, {} dropped); see why with `duet data stats --data {}`", o.data,
         d.report.examples_read, d.report.dropped_total(), o.data);
  if (d.report.dropped_total() > 0)
    std::fprintf(stderr,
                 "duet: note: %lld of %lld examples dropped (truncation or --on-error skip); \"line\" gives each "
                 "output's input line\n",
                 static_cast<long long>(d.report.dropped_total()), static_cast<long long>(d.report.examples_read));
  data::check_token_ids(d, o.data, config.vocab_size, o.model);
  for (size_t i = 0; i < d.examples.size(); ++i)
    if (d.examples[i].index != static_cast<int64_t>(i)) fail("internal: examples are not numbered in file order");

  // Weights last: data errors come before the (slow, large) load.
  engine::EngineOptions eo;
  eo.device = o.device;  // make_engine resolves auto
  eo.state = engine::EngineState::scoring;  // weights only: no gradients, no optimizer state
  eo.model = o.model;
  if (!o.adapter.empty()) {
    eo.lora = engine::read_adapter_config(o.adapter);
    eo.adapter = o.adapter;
  }
  auto engine = engine::make_engine(eo);
  for (size_t first = 0; first < d.examples.size(); first += kChunkExamples) {
    const size_t n = std::min(kChunkExamples, d.examples.size() - first);
    std::span<const layout::TokenizedExample> chunk(d.examples.data() + first, n);
    // index - first is the example's slot in this chunk (checked above).
    std::vector<std::vector<engine::ResponseLogp>> results(n);
    for (size_t i = 0; i < n; ++i) results[i].resize(chunk[i].responses.size());
    for (const auto& row : layout::pack_examples(chunk, lay, o.pack_tokens, 0)) {
      const engine::Batch batch = engine::make_batch(row);
      for (const auto& r : engine->score_policy(batch))
        results[static_cast<size_t>(r.example) - first][static_cast<size_t>(r.response)] = r;
    }
    std::string out;
    for (size_t i = 0; i < n; ++i) out += json_line(results[i], d.lines[first + i]);
    print(out);
  }
  return 0;
}

}  // namespace

Command add_logprobs(CLI::App& app) {
  auto o = std::make_shared<LogprobsOptions>();
  CLI::App* sub = app.add_subcommand(
      "logprobs", "Sequence log-probs of every response of a dataset, one JSON line per example in input order");
  sub->add_option("--model", o->model, "model folder: config.json and model.safetensors (or sharded)")->required();
  sub->add_option("--data", o->data, "dataset: .jsonl, .jsonl.gz or .jsonl.zst (text or pre-tokenized)")->required();
  sub->add_option("--layout", o->layout, "paired (default) or shared (prefix sharing); same numbers either way");
  sub->add_option("--pack-tokens", o->pack_tokens, "pack examples into rows of this many tokens (0 = no packing)");
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer.json or a folder holding it (default: the model folder's)");
  sub->add_option("--max-length", o->max_length, "cap on prompt + each response, in tokens (default 1024, as every command; 0 = no limit)");
  sub->add_option("--max-prompt-length", o->max_prompt_length, "cap on the prompt, keeping its end (default -1: min(512, max-length / 2); 0 = no limit)");
  sub->add_option("--chat-template", o->chat_template,
                  "auto (recognise the tokenizer's), none, or llama3, llama3.1, llama2, mistral, chatml, qwen2, "
                  "qwen2.5, qwen3");
  sub->add_option("--column", o->columns, "ROLE=KEY: read ROLE (prompt, chosen, ...) from column KEY");
  sub->add_option("--on-error", o->on_error, "fail (default: stop on any bad example) or skip (drop it)");
  sub->add_option("--threads", o->threads, "worker threads (0 = all cores)");
  sub->add_option("--device", o->device,
                  "auto (default: cuda where a GPU it runs on is visible, else cpu), cpu (the fp32 reference "
                  "engine) or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  sub->add_option("--adapter", o->adapter, "a PEFT LoRA adapter folder to apply on --model (dropout off, as in eval)");
  return {sub, [o] { return run_logprobs(*o); }};
}

}  // namespace duet::cli
