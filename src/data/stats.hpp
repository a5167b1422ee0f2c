#pragma once
// Dataset statistics for `duet data stats`: length percentiles, the median
// prompt/completion ratio and the token totals of the four layouts (paired /
// shared, unpacked / packed) with their token-count speedups over paired.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/report.hpp"
#include "layout/example.hpp"
#include "layout/layout_stats.hpp"

namespace duet::data {

struct LengthSummary {
  int64_t count = 0, min = 0, max = 0;
  double mean = 0;
  int64_t p10 = 0, p25 = 0, p50 = 0, p75 = 0, p90 = 0, p99 = 0;  // nearest-rank percentiles
};
LengthSummary summarize(std::vector<int64_t> values);

struct DatasetStats {
  LengthSummary prompt, chosen, rejected;
  // Per example r = prompt / mean response length; the median over examples,
  // and the shared/paired token ceiling (2r+2)/(r+2) at that median.
  double median_ratio = 0;
  double ratio_ceiling = 0;
  int64_t pack_tokens = 0;
  bool pack_tokens_automatic = false;  // not given: the longest paired unit, rounded up to 128
  layout::LayoutStats layouts;
};

// `pack_tokens` 0 = automatic (see above). Needs at least one example.
DatasetStats compute_stats(std::span<const layout::ExampleShape> shapes, int64_t pack_tokens);

// The one JSON object of `duet data stats --json` (keys in docs/data.md).
nlohmann::json stats_json(const DataReport& report, const DatasetStats* stats);

// The human-readable report.
std::string stats_text(const DataReport& report, const DatasetStats* stats);

}  // namespace duet::data
