#pragma once
// GPT-2's reversible byte <-> printable-character map used by ByteLevel
// pre-tokenizers and decoders: printable Latin-1 bytes map to themselves, the
// other 68 bytes to U+0100.. in order.
#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace duet::tok::byte_level {

// UTF-8 encoding of the character standing for byte b.
const std::string& char_of_byte(unsigned char b);

// The byte a character stands for, if it is one of the 256 mapped characters.
std::optional<unsigned char> byte_of_char(char32_t c);

// Appends the mapped characters of every byte of `bytes`.
void encode(std::string_view bytes, std::string& out);

}  // namespace duet::tok::byte_level
