#include "util/utf8.hpp"

namespace duet::utf8 {

std::optional<size_t> find_invalid(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    unsigned char b = p[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t len = sequence_length(b);
    if (len == 1 || b == 0xC0 || b == 0xC1 || b > 0xF4 || i + len > n) return i;
    for (size_t k = 1; k < len; ++k)
      if ((p[i + k] & 0xC0) != 0x80) return i;
    unsigned char b1 = p[i + 1];
    if (b == 0xE0 && b1 < 0xA0) return i;   // overlong 3-byte
    if (b == 0xED && b1 >= 0xA0) return i;  // UTF-16 surrogate
    if (b == 0xF0 && b1 < 0x90) return i;   // overlong 4-byte
    if (b == 0xF4 && b1 >= 0x90) return i;  // above U+10FFFF
    i += len;
  }
  return std::nullopt;
}

char32_t next(std::string_view s, size_t& i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  unsigned char b = p[i];
  size_t len = sequence_length(b);
  char32_t cp;
  switch (len) {
    case 1: cp = b; break;
    case 2: cp = b & 0x1F; break;
    case 3: cp = b & 0x0F; break;
    default: cp = b & 0x07; break;
  }
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (p[i + k] & 0x3F);
  i += len;
  return cp;
}

size_t previous_start(std::string_view s, size_t end) {
  size_t i = end;
  do {
    --i;
  } while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80);
  return i;
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string from_bytes_lossy(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  std::string out;
  out.reserve(n);
  auto cont = [&](size_t k) { return k < n && (p[k] & 0xC0) == 0x80; };
  size_t i = 0;
  while (i < n) {
    unsigned char b = p[i];
    if (b < 0x80) {
      out.push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    // `good` counts the bytes that form a valid prefix of a sequence.
    size_t width = 0, good = 1;
    if (b >= 0xC2 && b <= 0xDF) {
      width = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      width = 3;
    } else if (b >= 0xF0 && b <= 0xF4) {
      width = 4;
    }
    if (width >= 2 && i + 1 < n) {
      unsigned char c = p[i + 1];
      bool second_ok = width == 2   ? cont(i + 1)
                       : b == 0xE0  ? (c >= 0xA0 && c <= 0xBF)
                       : b == 0xED  ? (c >= 0x80 && c <= 0x9F)
                       : b == 0xF0  ? (c >= 0x90 && c <= 0xBF)
                       : b == 0xF4  ? (c >= 0x80 && c <= 0x8F)
                                    : cont(i + 1);
      if (second_ok) {
        good = 2;
        while (good < width && cont(i + good)) ++good;
      }
    }
    if (width != 0 && good == width) {
      out.append(bytes.substr(i, width));
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
    }
    i += (width != 0 && good == width) ? width : good;
  }
  return out;
}

}  // namespace duet::utf8
