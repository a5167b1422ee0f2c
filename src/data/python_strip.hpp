#pragma once
// Python's str.strip() family, as the Jinja templates call it (`| trim`,
// `.strip()`): whitespace is what str.isspace() accepts, Unicode included.
#include <string_view>

namespace duet::data {

bool is_python_space(char32_t cp);

// s must be valid UTF-8.
std::string_view python_strip(std::string_view s);

// Strips only the given ASCII characters, as str.strip(chars) / lstrip / rstrip.
std::string_view strip_chars(std::string_view s, std::string_view chars);
std::string_view lstrip_chars(std::string_view s, std::string_view chars);
std::string_view rstrip_chars(std::string_view s, std::string_view chars);

}  // namespace duet::data
