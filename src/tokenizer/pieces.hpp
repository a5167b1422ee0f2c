#pragma once
// The pre-tokenizer's working set: pieces of text stored back to back in one
// buffer, so that splitting a text allocates nothing once buffers are warm.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace duet::tok {

struct Piece {
  uint32_t begin, end;  // byte range in PieceList::text
  bool at_text_start;   // starts at offset 0 of the original text (Metaspace "first")
};

struct PieceList {
  std::string text;
  std::vector<Piece> pieces;

  void clear() {
    text.clear();
    pieces.clear();
  }
  std::string_view view(const Piece& p) const { return std::string_view(text).substr(p.begin, p.end - p.begin); }
  // Empty pieces are dropped, as HF drops empty splits.
  void add(std::string_view s, bool at_text_start) {
    if (s.empty()) return;
    auto b = static_cast<uint32_t>(text.size());
    text.append(s);
    pieces.push_back({b, static_cast<uint32_t>(text.size()), at_text_start});
  }
  // Starts a piece to be filled by appending to `text`; close it with finish().
  uint32_t open() const { return static_cast<uint32_t>(text.size()); }
  void finish(uint32_t begin, bool at_text_start) {
    if (text.size() > begin) pieces.push_back({begin, static_cast<uint32_t>(text.size()), at_text_start});
  }
};

}  // namespace duet::tok
