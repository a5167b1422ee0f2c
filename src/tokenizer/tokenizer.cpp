#include "tokenizer/tokenizer.hpp"

#include <unordered_map>

#include "tokenizer/added_vocabulary.hpp"
#include "tokenizer/decoder.hpp"
#include "tokenizer/json_fields.hpp"
#include "tokenizer/model.hpp"
#include "tokenizer/normalizer.hpp"
#include "tokenizer/pieces.hpp"
#include "tokenizer/post_processor.hpp"
#include "tokenizer/pre_tokenizer.hpp"
#include "util/error.hpp"
#include "util/parallel.hpp"
#include "util/read_file.hpp"
#include "util/utf8.hpp"

namespace duet::tok {

// Per-thread buffers and the word -> ids cache. Words repeat heavily in real
// text, so most words skip the BPE merge loop after the first occurrence.
struct EncodeScratch {
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  static constexpr size_t kMaxCachedWords = 1 << 17;
  static constexpr size_t kMaxCachedWordBytes = 256;
  std::unordered_map<std::string, Ids, Hash, std::equal_to<>> cache;
  std::vector<TextSection> raw_sections, normalized_sections;
  std::string normalized;
  PieceList pieces, scratch;
};

EncodeState::EncodeState() : scratch_(std::make_unique<EncodeScratch>()) {}
EncodeState::~EncodeState() = default;
EncodeState::EncodeState(EncodeState&&) noexcept = default;
EncodeState& EncodeState::operator=(EncodeState&&) noexcept = default;

Tokenizer::Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::filesystem::path find_tokenizer_json(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    fs::path file = path / "tokenizer.json";
    if (!fs::exists(file, ec))
      fail("{}: no tokenizer.json in this folder (duet reads Hugging Face fast-tokenizer files)", path.string());
    return file;
  }
  if (!fs::exists(path, ec)) fail("{}: no such file or folder", path.string());
  return path;
}

Tokenizer Tokenizer::load(const std::filesystem::path& path) {
  auto file = find_tokenizer_json(path);
  const auto text = read_file(file);
  if (!text) fail("{}: cannot open for reading", file.string());
  return from_json_text(*text, file.string());
}

Tokenizer Tokenizer::from_json_text(std::string_view json_text, const std::string& origin) {
  return with_context(origin, [&] {
    json j = json::parse(json_text, nullptr, false);
    if (j.is_discarded()) fail("not valid JSON (is this a Hugging Face tokenizer.json?)");
    if (!j.is_object()) fail("expected a JSON object at the top level");
    Tokenizer t;
    t.origin_ = origin;
    auto get = [&](const char* key) { return j.contains(key) ? j[key] : json(); };
    // The file's "truncation" and "padding" are ignored: duet truncates and
    // packs examples itself (HF's encode applies them only when enabled).
    t.normalizer_ = make_normalizer(get("normalizer"));
    t.pre_tokenizer_ = make_pre_tokenizer(get("pre_tokenizer"));
    t.model_ = make_model(require(j, "model", "tokenizer.json"));
    t.post_processor_ = make_post_processor(get("post_processor"));
    t.decoder_ = make_decoder(get("decoder"));
    t.added_ = std::make_unique<AddedVocabulary>(AddedVocabulary::from_json(get("added_tokens"), t.normalizer_.get()));
    return t;
  });
}

Ids Tokenizer::encode(std::string_view text, bool add_special) const {
  EncodeState state;
  return encode(text, add_special, state);
}

Ids Tokenizer::encode(std::string_view text, bool add_special, EncodeState& state) const {
  if (auto bad = utf8::find_invalid(text)) fail("text is not valid UTF-8 (byte {})", *bad);
  EncodeScratch& s = *state.scratch_;
  Ids ids;

  auto encode_pieces = [&] {
    if (pre_tokenizer_) pre_tokenizer_->apply(s.pieces, s.scratch);
    for (const Piece& p : s.pieces.pieces) {
      std::string_view word = s.pieces.view(p);
      auto hit = s.cache.find(word);
      if (hit != s.cache.end()) {
        ids.insert(ids.end(), hit->second.begin(), hit->second.end());
        continue;
      }
      size_t before = ids.size();
      model_->encode_word(word, ids);
      if (word.size() <= EncodeScratch::kMaxCachedWordBytes) {
        if (s.cache.size() >= EncodeScratch::kMaxCachedWords) s.cache.clear();
        s.cache.emplace(std::string(word), Ids(ids.begin() + static_cast<ptrdiff_t>(before), ids.end()));
      }
    }
  };

  s.raw_sections.clear();
  added_->split(text, false, s.raw_sections);
  for (const TextSection& raw : s.raw_sections) {
    if (raw.id) {
      ids.push_back(*raw.id);
      continue;
    }
    s.normalized.assign(text.substr(raw.begin, raw.end - raw.begin));
    if (normalizer_) normalizer_->normalize(s.normalized);
    s.normalized_sections.clear();
    if (added_->has_normalized_tokens())
      added_->split(s.normalized, true, s.normalized_sections);
    else if (!s.normalized.empty())
      s.normalized_sections.push_back({0, s.normalized.size(), std::nullopt});
    for (const TextSection& sec : s.normalized_sections) {
      if (sec.id) {
        ids.push_back(*sec.id);
        continue;
      }
      s.pieces.clear();
      s.pieces.add(std::string_view(s.normalized).substr(sec.begin, sec.end - sec.begin),
                   raw.begin == 0 && sec.begin == 0);
      encode_pieces();
    }
  }
  if (add_special && post_processor_) post_processor_->add_special_tokens(ids);
  return ids;
}

std::vector<Ids> Tokenizer::encode_batch(std::span<const std::string> texts, bool add_special,
                                         unsigned threads) const {
  std::vector<Ids> out(texts.size());
  parallel_chunks(texts.size(), threads, [&](unsigned, size_t begin, size_t end) {
    EncodeState state;
    for (size_t i = begin; i < end; ++i) out[i] = encode(texts[i], add_special, state);
  });
  return out;
}

std::string Tokenizer::decode(std::span<const TokenId> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (TokenId id : ids) {
    if (const AddedToken* added = added_->by_id(id)) {
      if (!(skip_special_tokens && added->special)) tokens.push_back(added->content);
      continue;
    }
    const std::string* token = model_->id_to_token(id);
    if (!token) fail("token id {} is not in the vocabulary (size {})", id, vocab_size());
    tokens.push_back(*token);
  }
  if (!decoder_) {
    std::string joined;
    for (size_t k = 0; k < tokens.size(); ++k) joined += (k ? " " : "") + tokens[k];
    return joined;
  }
  decoder_->decode_chain(tokens);
  std::string text;
  for (const auto& t : tokens) text += t;
  return text;
}

size_t Tokenizer::vocab_size() const {
  size_t n = model_->vocab_size();
  if (auto m = added_->max_id()) n = std::max(n, size_t{*m} + 1);
  return n;
}

std::optional<TokenId> Tokenizer::token_to_id(std::string_view token) const {
  if (auto id = added_->by_content(token)) return id;
  return model_->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(TokenId id) const {
  if (const AddedToken* t = added_->by_id(id)) return t->content;
  if (const std::string* t = model_->id_to_token(id)) return *t;
  return std::nullopt;
}

bool Tokenizer::is_special(TokenId id) const {
  const AddedToken* t = added_->by_id(id);
  return t && t->special;
}

}  // namespace duet::tok
