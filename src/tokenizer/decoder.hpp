#pragma once
// Decoders turn token strings back into text (HF `decoder`): ByteLevel,
// Metaspace, Replace, ByteFallback, Fuse, Strip and Sequence. Each rewrites
// the list of token strings; the results are concatenated at the end.
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace duet::tok {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// nullptr for JSON null.
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& spec);

}  // namespace duet::tok
