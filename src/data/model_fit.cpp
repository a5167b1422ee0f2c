#include "data/model_fit.hpp"

#include <filesystem>

#include <fmt/format.h>

#include "util/error.hpp"

namespace duet::data {

void check_tokenizer_fits(const TokenizerBundle& bundle, int64_t vocab_size, const std::string& model) {
  if (bundle.tokenizer.vocab_size() > static_cast<size_t>(vocab_size))
    fail("{}: the tokenizer has {} tokens but the model ({}) has vocab_size {}; the tokenizer does not fit this "
         "model: pass the model's own tokenizer with --tokenizer",
         bundle.tokenizer.origin(), bundle.tokenizer.vocab_size(), model, vocab_size);
}

std::optional<TokenizerBundle> load_model_tokenizer(const std::filesystem::path& tokenizer,
                                                    const std::filesystem::path& model, int64_t vocab_size,
                                                    std::filesystem::path* folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path path = tokenizer;
  if (path.empty()) {
    if (!fs::exists(model / "tokenizer.json", ec)) return std::nullopt;
    path = model;
  }
  auto bundle = load_tokenizer_bundle(path);
  check_tokenizer_fits(bundle, vocab_size, model.string());
  if (folder) *folder = fs::is_directory(path, ec) ? path : path.parent_path();
  return bundle;
}

namespace {

std::string response_name(size_t r, size_t k) {
  if (k == 2) return r == 0 ? "chosen response" : "rejected response";
  return fmt::format("response {} (0 = best)", r);
}

}  // namespace

void check_token_ids(const PreparedDataset& d, const std::string& data_file, int64_t vocab_size,
                     const std::string& model) {
  for (size_t i = 0; i < d.examples.size(); ++i) {
    const auto& e = d.examples[i];
    auto check = [&](const std::vector<layout::TokenId>& ids, const std::string& what) {
      for (layout::TokenId id : ids)
        if (id >= static_cast<uint64_t>(vocab_size))
          fail("{}:{}: token id {} in the {} is outside the model's vocabulary (vocab_size {} in {}); the data was "
               "tokenized for another model: re-tokenize it with this model's tokenizer",
               data_file, d.lines[i], id, what, vocab_size, (std::filesystem::path(model) / "config.json").string());
    };
    check(e.prompt, "prompt");
    for (size_t r = 0; r < e.responses.size(); ++r) check(e.responses[r], response_name(r, e.responses.size()));
  }
}

}  // namespace duet::data
