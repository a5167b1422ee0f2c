#include "layout/targets.hpp"

namespace duet::layout {

std::vector<LogprobTarget> logprob_targets(const Row& row) {
  std::vector<LogprobTarget> targets;
  for (const Segment& s : row.segments) {
    if (s.response == kPromptSegment) continue;
    for (int32_t i = s.begin; i < s.end; ++i)
      targets.push_back({i, row.parent[i], row.token[i], s.example, s.response});
  }
  return targets;
}

std::vector<ResponseTargets> response_targets(const Row& row) {
  std::vector<ResponseTargets> spans;
  int32_t first = 0;
  for (const Segment& s : row.segments) {
    if (s.response == kPromptSegment) continue;
    spans.push_back({s.example, s.response, first, s.end - s.begin});
    first += s.end - s.begin;
  }
  return spans;
}

}  // namespace duet::layout
