#pragma once
// Byte-pair encoding exactly as HF tokenizers' BPE: characters (with
// continuing_subword_prefix / end_of_word_suffix) looked up in the vocabulary,
// unknown characters as byte-fallback tokens <0xXX> or the unk token (fused
// when fuse_unk), then merges applied lowest rank first, leftmost first.
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/model.hpp"

namespace duet::tok {

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class Bpe final : public Model {
 public:
  // merges: pairs of token strings in priority order (rank = index).
  Bpe(std::unordered_map<std::string, TokenId> vocab,
      const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options);

  static std::unique_ptr<Bpe> from_json(const nlohmann::json& spec);

  void encode_word(std::string_view word, std::vector<TokenId>& out) const override;
  std::optional<TokenId> token_to_id(std::string_view token) const override;
  const std::string* id_to_token(TokenId id) const override;
  size_t vocab_size() const override { return id_to_token_.size(); }

 private:
  struct Merge {
    uint32_t rank;
    TokenId result;
  };
  static uint64_t pair_key(TokenId a, TokenId b) { return (uint64_t{a} << 32) | b; }
  std::optional<TokenId> lookup(std::string_view s) const;
  void initial_symbols(std::string_view word, std::vector<TokenId>& symbols) const;

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, TokenId, StringHash, std::equal_to<>> vocab_;
  std::vector<std::string> id_to_token_;  // "" for ids the vocabulary skips
  std::unordered_map<uint64_t, Merge> merges_;
  BpeOptions options_;
  std::optional<TokenId> unk_id_;
  int64_t byte_tokens_[256];  // id of <0xXX>, or -1 when the vocabulary lacks it
};

}  // namespace duet::tok
