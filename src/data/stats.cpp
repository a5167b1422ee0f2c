#include "data/stats.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "util/error.hpp"

namespace duet::data {

LengthSummary summarize(std::vector<int64_t> v) {
  LengthSummary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  auto rank = [&](double p) { return v[static_cast<size_t>(std::max(1.0, std::ceil(p / 100.0 * n))) - 1]; };
  s.count = static_cast<int64_t>(n);
  s.min = v.front();
  s.max = v.back();
  s.mean = static_cast<double>(std::accumulate(v.begin(), v.end(), int64_t{0})) / n;
  s.p10 = rank(10);
  s.p25 = rank(25);
  s.p50 = rank(50);
  s.p75 = rank(75);
  s.p90 = rank(90);
  s.p99 = rank(99);
  return s;
}

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

DatasetStats compute_stats(std::span<const layout::ExampleShape> shapes, int64_t pack_tokens) {
  if (shapes.empty()) fail("no examples to compute statistics on");
  DatasetStats s;
  std::vector<int64_t> prompt, chosen, rejected;
  std::vector<double> ratios;
  int64_t longest = 0;
  for (const auto& shape : shapes) {
    prompt.push_back(shape.prompt);
    chosen.push_back(shape.responses.at(0));
    rejected.push_back(shape.responses.at(1));
    const double mean_response =
        static_cast<double>(std::accumulate(shape.responses.begin(), shape.responses.end(), int64_t{0})) /
        static_cast<double>(shape.responses.size());
    ratios.push_back(static_cast<double>(shape.prompt) / mean_response);
    longest = std::max(longest, layout::unit_tokens(shape, layout::Layout::paired));
  }
  s.prompt = summarize(std::move(prompt));
  s.chosen = summarize(std::move(chosen));
  s.rejected = summarize(std::move(rejected));
  s.median_ratio = median(std::move(ratios));
  s.ratio_ceiling = (2 * s.median_ratio + 2) / (s.median_ratio + 2);
  s.pack_tokens_automatic = pack_tokens == 0;
  s.pack_tokens = pack_tokens > 0 ? pack_tokens : (longest + 127) / 128 * 128;
  s.layouts = layout::layout_stats(shapes, s.pack_tokens);
  return s;
}

}  // namespace duet::data
