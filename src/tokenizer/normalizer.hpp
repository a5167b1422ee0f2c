#pragma once
// Normalizers rewrite a piece of text before pre-tokenization (HF
// `normalizer`): NFC/NFD/NFKC/NFKD, Lowercase, Prepend, Replace, Strip,
// StripAccents and Sequence. Offsets are not tracked: duet needs ids only.
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace duet::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

// nullptr for a JSON null; duet::Error naming the type for anything unsupported.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& spec);

}  // namespace duet::tok
