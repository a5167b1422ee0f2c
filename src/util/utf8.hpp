#pragma once
// UTF-8 helpers: strict validation (RFC 3629: no overlongs, no surrogates, at
// most U+10FFFF), code point iteration and encoding.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace duet::utf8 {

// Byte offset of the first invalid sequence, or nullopt when `s` is valid.
std::optional<size_t> find_invalid(std::string_view s);

// Length in bytes of the sequence starting with lead byte `b` (1 for invalid leads).
inline size_t sequence_length(unsigned char b) {
  if (b < 0x80) return 1;
  if ((b >> 5) == 0x6) return 2;
  if ((b >> 4) == 0xE) return 3;
  if ((b >> 3) == 0x1E) return 4;
  return 1;
}

// Decodes the code point at s[i] (s must be valid UTF-8) and advances i.
char32_t next(std::string_view s, size_t& i);

// Decodes the code point ending just before s[end] (s valid); returns its start.
size_t previous_start(std::string_view s, size_t end);

void append(std::string& out, char32_t cp);

// Bytes -> valid UTF-8, each maximal invalid subsequence replaced by one
// U+FFFD, exactly as Rust's String::from_utf8_lossy (which HF decoders use).
std::string from_bytes_lossy(std::string_view bytes);

}  // namespace duet::utf8
