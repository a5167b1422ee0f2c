#include "tokenizer/byte_level.hpp"

#include "util/utf8.hpp"

namespace duet::tok::byte_level {

namespace {

struct Tables {
  std::array<std::string, 256> to_char;
  std::array<int, 512> to_byte;  // indexed by code point; every mapped char is < 0x200
  Tables() {
    to_byte.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char32_t c = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++);
      utf8::append(to_char[b], c);
      to_byte[c] = b;
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const std::string& char_of_byte(unsigned char b) { return tables().to_char[b]; }

std::optional<unsigned char> byte_of_char(char32_t c) {
  if (c >= 512) return std::nullopt;
  int b = tables().to_byte[c];
  if (b < 0) return std::nullopt;
  return static_cast<unsigned char>(b);
}

void encode(std::string_view bytes, std::string& out) {
  const auto& t = tables();
  for (unsigned char b : bytes) out += t.to_char[b];
}

}  // namespace duet::tok::byte_level
