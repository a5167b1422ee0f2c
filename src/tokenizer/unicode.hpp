#pragma once
// Character classes as Rust's `char` methods define them, which is what HF
// tokenizers calls (is_whitespace, is_numeric, is_alphanumeric, punctuation).
namespace duet::tok::unicode {

bool is_whitespace(char32_t c);    // Unicode White_Space
bool is_numeric(char32_t c);       // general category Nd, Nl or No
bool is_alphanumeric(char32_t c);  // letters (L*, Nl) or numeric
bool is_punctuation(char32_t c);   // general category P*
bool is_mark_nonspacing(char32_t c);  // Mn, removed by StripAccents

}  // namespace duet::tok::unicode
