#pragma once
// One row of the token forest: the sequence the engine runs, with the three
// per-token arrays of docs/layout.md and a segment table. See docs/layout.md.
#include <cstdint>
#include <vector>

#include "layout/example.hpp"

namespace duet::layout {

inline constexpr int32_t kPromptSegment = -1;  // Segment::response of a prompt

// A contiguous run of tokens of one prompt or one response.
struct Segment {
  int64_t example = 0;   // TokenizedExample::index
  int32_t response = 0;  // index into responses, or kPromptSegment
  int32_t begin = 0;     // row index of the first token
  int32_t end = 0;       // one past the last token
};

// Invariants (checked by the tests):
// - trees are contiguous and depth-first; segments cover [0, used) in order;
// - position[i] = depth in its tree (responses start at the prompt length);
// - key j is visible to query i  <=>  j <= i < visible_until[j]
//   (prompt token: end of its tree; response token: end of its response);
// - parent[i] = row index whose hidden state predicts token i: i-1 inside a
//   segment, the last prompt token at a response's first token, -1 at a tree's
//   first token;
// - padding only after `used`: token = the caller's pad id, position 0,
//   visible_until = i+1 (sees only itself), parent -1, no segment.
struct Row {
  std::vector<TokenId> token;
  std::vector<int32_t> position;
  std::vector<int32_t> visible_until;
  std::vector<int32_t> parent;
  std::vector<Segment> segments;
  int32_t used = 0;  // tokens before the padding

  int32_t size() const { return static_cast<int32_t>(token.size()); }
  int32_t padding() const { return size() - used; }
};

}  // namespace duet::layout
