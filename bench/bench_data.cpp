// Throughput of the data pipeline on a dataset file (e.g. from
// scripts/make_synthetic_data.py --format conversational): read + parse +
// chat template + tokenize + truncate (data::prepare_dataset), then pack into
// shared-layout rows (layout::pack_examples). Examples/s and tokens/s on one
// thread and on all threads, best of --repeat runs, printed as one JSON line.
// Packing is single-threaded; it is timed on its own and included in the
// end-to-end rates.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "data/prepare.hpp"
#include "layout/pack_rows.hpp"
#include "util/error.hpp"
#include "util/parallel.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Run {
  double prepare_s = 1e30;
  double pack_s = 1e30;
  size_t examples = 0;
  size_t tokens = 0;  // prompt + response tokens after truncation
  size_t rows = 0;
};

// Best (shortest) prepare and pack times of `repeat` runs.
Run best_of(const std::string& file, duet::data::PrepareOptions options, const duet::data::TokenizerBundle& tok,
            int64_t pack_tokens, int repeat) {
  Run best;
  for (int r = 0; r < repeat; ++r) {
    auto start = Clock::now();
    auto data = duet::data::prepare_dataset(file, options, &tok, duet::data::OnError::skip);
    const double prepare_s = seconds_since(start);
    start = Clock::now();
    auto rows = duet::layout::pack_examples(data.examples, duet::layout::Layout::shared, pack_tokens, 0);
    const double pack_s = seconds_since(start);
    best.prepare_s = std::min(best.prepare_s, prepare_s);
    best.pack_s = std::min(best.pack_s, pack_s);
    best.examples = data.examples.size();
    best.rows = rows.size();
    best.tokens = 0;
    for (const auto& ex : data.examples) {
      best.tokens += ex.prompt.size();
      for (const auto& resp : ex.responses) best.tokens += resp.size();
    }
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"duet data pipeline throughput"};
  std::string tokenizer, data, chat_template = "auto";
  int repeat = 3;
  unsigned threads = 0;
  int64_t pack_tokens = 8192, max_length = 0;
  app.add_option("--tokenizer", tokenizer, "tokenizer.json or a folder with tokenizer_config.json")->required();
  app.add_option("--data", data, "dataset (.jsonl, .gz, .zst)")->required();
  app.add_option("--chat-template", chat_template);
  app.add_option("--pack-tokens", pack_tokens, "row length for packing");
  app.add_option("--max-length", max_length, "truncate chains to this (0 = none)");
  app.add_option("--repeat", repeat);
  app.add_option("--threads", threads, "threads for the parallel run (0 = all cores)");
  CLI11_PARSE(app, argc, argv);
  try {
    auto tok = duet::data::load_tokenizer_bundle(tokenizer);
    duet::data::PrepareOptions options;
    options.chat_template = chat_template;
    options.truncation.max_length = max_length;
    options.pack_tokens = pack_tokens;
    options.pack_layout = duet::layout::Layout::shared;
    options.threads = 1;
    const Run one = best_of(data, options, tok, pack_tokens, repeat);
    const unsigned all = duet::resolve_threads(threads);
    options.threads = all;
    const Run many = best_of(data, options, tok, pack_tokens, repeat);
    const double one_s = one.prepare_s + one.pack_s, all_s = many.prepare_s + many.pack_s;
    nlohmann::json out = {{"impl", "duet"},
                          {"data", data},
                          {"tokenizer", tokenizer},
                          {"bytes", std::filesystem::file_size(data)},
                          {"examples", many.examples},
                          {"tokens", many.tokens},
                          {"rows", many.rows},
                          {"pack_tokens", pack_tokens},
                          {"threads_all", all},
                          {"prepare_s_1thread", one.prepare_s},
                          {"prepare_s_all", many.prepare_s},
                          {"pack_s", many.pack_s},
                          {"examples_per_s_1thread", one.examples / one_s},
                          {"tokens_per_s_1thread", one.tokens / one_s},
                          {"examples_per_s_all", many.examples / all_s},
                          {"tokens_per_s_all", many.tokens / all_s},
                          {"mb_per_s_all", std::filesystem::file_size(data) / all_s / 1e6}};
    std::printf("%s\n", out.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_data: %s\n", e.what());
    return 1;
  }
  return 0;
}
