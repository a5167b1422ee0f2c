// Decoders on token lists whose expected text follows from HF's definitions.
#include <gtest/gtest.h>

#include "tokenizer/decoder.hpp"
#include "util/error.hpp"
#include "util/utf8.hpp"

namespace duet::tok {
namespace {

std::string decode(const std::string& spec, std::vector<std::string> tokens) {
  make_decoder(nlohmann::json::parse(spec))->decode_chain(tokens);
  std::string out;
  for (auto& t : tokens) out += t;
  return out;
}

TEST(Decoders, ByteLevelRestoresBytesAndReplacesInvalidUtf8) {
  EXPECT_EQ(decode(R"({"type":"ByteLevel"})", {"ĠHello", "Ċ", "Ã©"}), " Hello\né");
  // A lone lead byte (F0 = "ð") is one U+FFFD, as Rust's from_utf8_lossy.
  EXPECT_EQ(decode(R"({"type":"ByteLevel"})", {"ð", "a"}), "\uFFFDa");
}

TEST(Decoders, LossyUtf8ReplacesMaximalSubparts) {
  using duet::utf8::from_bytes_lossy;
  EXPECT_EQ(from_bytes_lossy("a\xF0\x9F\xA6"), "a\uFFFD");             // truncated 4-byte: one U+FFFD
  EXPECT_EQ(from_bytes_lossy("\xE0\x80\x80"), "\uFFFD\uFFFD\uFFFD");   // overlong: each byte
  EXPECT_EQ(from_bytes_lossy("\xED\xA0\x80"), "\uFFFD\uFFFD\uFFFD");   // surrogate: each byte
  EXPECT_EQ(from_bytes_lossy("\xC3\xA9\xFF"), "\u00e9\uFFFD");
}

TEST(Decoders, MetaspaceDropsTheFirstTokensMarkers) {
  const std::string spec = R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true})";
  EXPECT_EQ(decode(spec, {"▁Hey", "▁friend"}), "Hey friend");
  EXPECT_EQ(decode(R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"never"})", {"▁Hey"}), " Hey");
}

TEST(Decoders, LlamaChainReplaceByteFallbackFuseStrip) {
  const std::string spec = R"({"type":"Sequence","decoders":[
      {"type":"Replace","pattern":{"String":"▁"},"content":" "},
      {"type":"ByteFallback"},{"type":"Fuse"},
      {"type":"Strip","content":" ","start":1,"stop":0}]})";
  EXPECT_EQ(decode(spec, {"▁Hello", "▁", "<0xF0>", "<0x9F>", "<0xA6>", "<0x99>"}), "Hello 🦙");
  // Invalid byte runs become one U+FFFD per byte.
  EXPECT_EQ(decode(spec, {"▁a", "<0xF0>", "<0x9F>"}), "a\uFFFD\uFFFD");
}

TEST(Decoders, UnsupportedTypeIsNamed) {
  try {
    make_decoder(nlohmann::json::parse(R"({"type":"WordPiece"})"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("WordPiece"), std::string::npos);
  }
}

}  // namespace
}  // namespace duet::tok
