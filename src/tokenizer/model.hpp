#pragma once
// The model turns one pre-tokenized word into ids (HF `model`). duet supports
// BPE, the model of every family it trains (Llama 2/3, Qwen2, Mistral).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace duet::tok {

using TokenId = uint32_t;

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of `word` to `out`.
  virtual void encode_word(std::string_view word, std::vector<TokenId>& out) const = 0;
  virtual std::optional<TokenId> token_to_id(std::string_view token) const = 0;
  virtual const std::string* id_to_token(TokenId id) const = 0;
  virtual size_t vocab_size() const = 0;  // one more than the largest id
};

std::unique_ptr<Model> make_model(const nlohmann::json& spec);

}  // namespace duet::tok
