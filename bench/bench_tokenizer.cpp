// Encoding throughput of duet's tokenizer on a JSONL file of texts (one JSON
// string per line, e.g. from bench/make_bench_text.py): tokens/s and MB/s on
// one thread and on all threads, best of --repeat runs, printed as one JSON
// line so it can sit next to bench/hf_tokenizer_bench.py's line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"
#include "util/parallel.hpp"

namespace {

struct Measure {
  double seconds;
  size_t tokens;
};

// Best (shortest) of `repeat` runs. Each run starts with cold word caches,
// as a fresh `duet tokenize` would.
Measure best_of(const duet::tok::Tokenizer& t, const std::vector<std::string>& texts, unsigned threads, int repeat) {
  Measure best{1e30, 0};
  for (int r = 0; r < repeat; ++r) {
    auto start = std::chrono::steady_clock::now();
    auto ids = t.encode_batch(texts, false, threads);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    size_t n = 0;
    for (const auto& v : ids) n += v.size();
    if (s < best.seconds) best = {s, n};
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"duet tokenizer throughput"};
  std::string tokenizer, text;
  int repeat = 3;
  unsigned threads = 0;
  app.add_option("--tokenizer", tokenizer)->required();
  app.add_option("--text", text, "JSONL file, one JSON string per line")->required();
  app.add_option("--repeat", repeat);
  app.add_option("--threads", threads, "threads for the parallel run (0 = all cores)");
  CLI11_PARSE(app, argc, argv);
  try {
    auto t0 = std::chrono::steady_clock::now();
    auto tok = duet::tok::Tokenizer::load(tokenizer);
    double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<std::string> texts;
    size_t bytes = 0;
    std::ifstream in(text);
    if (!in) duet::fail("{}: cannot open", text);
    for (std::string line; std::getline(in, line);) {
      texts.push_back(nlohmann::json::parse(line).get<std::string>());
      bytes += texts.back().size();
    }
    Measure one = best_of(tok, texts, 1, repeat);
    unsigned all = duet::resolve_threads(threads);
    Measure many = best_of(tok, texts, all, repeat);
    nlohmann::json out = {{"impl", "duet"},
                          {"tokenizer", tokenizer},
                          {"texts", texts.size()},
                          {"bytes", bytes},
                          {"tokens", one.tokens},
                          {"load_s", load_s},
                          {"threads_all", all},
                          {"tokens_per_s_1thread", one.tokens / one.seconds},
                          {"mb_per_s_1thread", bytes / one.seconds / 1e6},
                          {"tokens_per_s_all", many.tokens / many.seconds},
                          {"mb_per_s_all", bytes / many.seconds / 1e6}};
    std::printf("%s\n", out.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_tokenizer: error: %s\n", e.what());
    return 1;
  }
}
