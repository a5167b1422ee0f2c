// tokenizer.json -> Tokenizer: the loader (every component: normalizers,
// pre-tokenizers and their regexes, BPE vocab and merges, added tokens,
// post-processor, decoders), then, when it loads, an encode and a decode.
#include <string_view>

#include "fuzz_target.hpp"
#include "tokenizer/tokenizer.hpp"

DUET_FUZZ_TARGET(tokenizer_json, data, size) {
  try {
    const auto t = duet::tok::Tokenizer::from_json_text(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.json");
    const auto ids = t.encode("Hello world, the 123 \xc3\xa9t\xc3\xa9 <|end|>\n\t  x", true);
    (void)t.decode(ids, false);
  } catch (const duet::Error&) {
  }
  return 0;
}
