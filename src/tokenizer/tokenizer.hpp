#pragma once
// A Hugging Face `tokenizer.json`, loaded directly and applied exactly as the
// `tokenizers` library does:
//   raw text -> added tokens split out -> normalizer -> pre-tokenizer
//            -> model (BPE) -> post-processor (only with add_special)
// and ids -> tokens -> decoder chain -> text.
// A Tokenizer is immutable after load and safe to share between threads; the
// per-thread mutable state (word cache, scratch buffers) lives in EncodeState.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace duet::tok {

using TokenId = uint32_t;
using Ids = std::vector<TokenId>;

class Model;
class Normalizer;
class PreTokenizer;
class PostProcessor;
class Decoder;
class AddedVocabulary;
struct EncodeScratch;

// Per-thread scratch and word cache. Create one per thread; reuse it.
class EncodeState {
 public:
  EncodeState();
  ~EncodeState();
  EncodeState(EncodeState&&) noexcept;
  EncodeState& operator=(EncodeState&&) noexcept;

 private:
  friend class Tokenizer;
  std::unique_ptr<EncodeScratch> scratch_;
};

class Tokenizer {
 public:
  // `path` is a tokenizer.json or a folder holding one. Throws duet::Error with
  // the file name and the offending component on anything unsupported.
  static Tokenizer load(const std::filesystem::path& path);
  static Tokenizer from_json_text(std::string_view json_text, const std::string& origin);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // `text` must be valid UTF-8 (callers validate at their boundary; this
  // throws duet::Error otherwise). add_special mirrors HF add_special_tokens.
  Ids encode(std::string_view text, bool add_special, EncodeState& state) const;
  Ids encode(std::string_view text, bool add_special = false) const;

  // Encodes many texts on `threads` threads (0 = all cores), results in order.
  std::vector<Ids> encode_batch(std::span<const std::string> texts, bool add_special,
                                unsigned threads = 0) const;

  // Ids -> text through the decoder chain, as HF Tokenizer.decode. Throws
  // duet::Error on an id outside the vocabulary.
  std::string decode(std::span<const TokenId> ids, bool skip_special_tokens) const;

  size_t vocab_size() const;  // one more than the largest id, added tokens included
  std::optional<TokenId> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(TokenId id) const;
  bool is_special(TokenId id) const;
  const std::string& origin() const { return origin_; }

 private:
  Tokenizer();
  std::string origin_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  std::unique_ptr<AddedVocabulary> added_;
};

// Resolves a tokenizer argument: a tokenizer.json file, or a folder holding one.
std::filesystem::path find_tokenizer_json(const std::filesystem::path& path);

}  // namespace duet::tok
