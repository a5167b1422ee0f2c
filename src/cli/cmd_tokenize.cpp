// duet tokenize: text lines -> JSON id arrays (or ids -> text with --decode),
// exactly as Hugging Face tokenizers would give them. Reads standard input in
// blocks so that large files stream, encodes each block on all cores.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "tokenizer/tokenizer.hpp"
#include "util/error.hpp"
#include "util/parallel.hpp"
#include "util/utf8.hpp"

namespace duet::cli {

namespace {

struct TokenizeOptions {
  std::string tokenizer;
  bool jsonl = false;
  bool add_special = false;
  bool decode = false;
  bool skip_special = false;
  unsigned threads = 0;
};

constexpr size_t kBlockLines = 16384;

// Reads up to kBlockLines lines; returns false at end of input.
bool read_block(std::istream& in, std::vector<std::string>& lines) {
  lines.clear();
  std::string line;
  while (lines.size() < kBlockLines && std::getline(in, line)) lines.push_back(std::move(line));
  return !lines.empty();
}

std::string where(size_t line_number) { return fmt::format("<stdin>:{}", line_number); }

// The text of one input line: the line itself, or with --jsonl a JSON string.
std::string text_of(const std::string& line, bool jsonl, size_t line_number) {
  if (jsonl) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_string())
      fail("{}: expected a JSON string per line (--jsonl), e.g. \"hello\\nworld\"", where(line_number));
    return j.get<std::string>();
  }
  if (auto bad = utf8::find_invalid(line))
    fail("{}: invalid UTF-8 at byte {}; convert the input to UTF-8 (e.g. iconv) and retry", where(line_number), *bad + 1);
  return line;
}

std::vector<tok::TokenId> ids_of(const std::string& line, size_t line_number, size_t vocab_size) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_array())
    fail("{}: expected a JSON array of token ids per line (--decode)", where(line_number));
  std::vector<tok::TokenId> ids;
  for (const auto& v : j) {
    if (!v.is_number_unsigned() || v.get<uint64_t>() >= vocab_size)
      fail("{}: {} is not a token id of this tokenizer (0..{})", where(line_number), v.dump(), vocab_size - 1);
    ids.push_back(v.get<tok::TokenId>());
  }
  return ids;
}

int run_tokenize(const TokenizeOptions& o) {
  const tok::Tokenizer tokenizer = tok::Tokenizer::load(o.tokenizer);
  std::ios::sync_with_stdio(false);
  std::vector<std::string> lines;
  std::vector<std::string> out;
  size_t first_line = 1;
  while (read_block(std::cin, lines)) {
    out.assign(lines.size(), std::string());
    parallel_chunks(lines.size(), o.threads, [&](unsigned, size_t begin, size_t end) {
      tok::EncodeState state;
      for (size_t i = begin; i < end; ++i) {
        size_t line_number = first_line + i;
        if (o.decode) {
          std::string text = tokenizer.decode(ids_of(lines[i], line_number, tokenizer.vocab_size()), o.skip_special);
          out[i] = nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        } else {
          auto ids = tokenizer.encode(text_of(lines[i], o.jsonl, line_number), o.add_special, state);
          out[i] = fmt::format("[{}]", fmt::join(ids, ","));
        }
      }
    });
    for (const auto& s : out) {
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fputc('\n', stdout);
    }
    first_line += lines.size();
  }
  if (std::fflush(stdout) != 0) fail("cannot write to standard output");
  return 0;
}

}  // namespace

Command add_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* sub = app.add_subcommand(
      "tokenize", "Encode text lines from stdin to JSON id arrays, as Hugging Face tokenizers does (or decode ids)");
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer.json, or a model folder holding one")->required();
  sub->add_flag("--jsonl", o->jsonl, "each input line is a JSON string (texts may hold newlines)");
  sub->add_flag("--add-special", o->add_special, "add special tokens as HF add_special_tokens=True");
  sub->add_flag("--decode", o->decode, "read JSON arrays of ids, print JSON strings");
  sub->add_flag("--skip-special-tokens", o->skip_special, "with --decode: drop special tokens");
  sub->add_option("--threads", o->threads, "worker threads (0 = all cores)");
  return {sub, [o] { return run_tokenize(*o); }};
}

}  // namespace duet::cli
