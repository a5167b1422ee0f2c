#pragma once
// Names the field at a byte offset of a JSON text, e.g. "chosen[1].content",
// by scanning its structure only. Works on invalid UTF-8 and on text that
// stops being valid JSON after the offset, so that reports of bad bytes and
// parse errors can say which field they are in.
#include <cstddef>
#include <string>
#include <string_view>

namespace duet::data {

// "(line)" when the offset is not inside any field.
std::string json_path_at(std::string_view text, size_t offset);

}  // namespace duet::data
