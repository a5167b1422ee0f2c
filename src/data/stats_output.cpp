// stats_json and stats_text: the two renderings of `duet data stats`.
#include <fmt/format.h>

#include "data/stats.hpp"

namespace duet::data {

using nlohmann::json;

namespace {

json length_json(const LengthSummary& s) {
  return {{"count", s.count}, {"min", s.min},   {"p10", s.p10}, {"p25", s.p25}, {"p50", s.p50},
          {"p75", s.p75},     {"p90", s.p90},   {"p99", s.p99}, {"max", s.max}, {"mean", s.mean}};
}

double speedup(const layout::LayoutTotals& base, const layout::LayoutTotals& other) {
  return other.total() > 0 ? static_cast<double>(base.total()) / static_cast<double>(other.total()) : 0.0;
}

std::string reasons_text(const std::map<std::string, int64_t>& counts) {
  std::string s;
  for (const auto& [reason, n] : counts) s += fmt::format("{}{} {}", s.empty() ? "" : ", ", reason, n);
  return s;
}

}  // namespace

json stats_json(const DataReport& r, const DatasetStats* s) {
  json j = {
      {"file", r.file},
      {"compression", r.compression},
      {"chat_template", r.template_description},
      {"tokenized", r.tokenized},
      {"examples_read", r.examples_read},
      {"examples", r.kept},
      {"dropped", r.dropped_total()},
      {"dropped_by_reason", r.dropped},
      {"problems", r.problems.size()},
      {"truncated", {{"prompt", r.prompt_truncated}, {"responses", r.responses_truncated}}},
      {"truncation", {{"max_length", r.truncation.max_length}, {"max_prompt_length", r.truncation.max_prompt_length}}},
      {"formats", r.formats},
      {"notes", r.notes},
  };
  const layout::LayoutStats empty{};
  const layout::LayoutStats& l = s ? s->layouts : empty;
  if (s) {
    j["lengths"] = {{"prompt", length_json(s->prompt)},
                    {"chosen", length_json(s->chosen)},
                    {"rejected", length_json(s->rejected)}};
    j["median_prompt_completion_ratio"] = s->median_ratio;
    j["shared_ceiling_at_median_ratio"] = s->ratio_ceiling;
    j["pack_tokens"] = s->pack_tokens;
    j["pack_tokens_automatic"] = s->pack_tokens_automatic;
  }
  j["tokens_paired"] = l.paired_unpacked.total();
  j["tokens_shared"] = l.shared_unpacked.total();
  j["tokens_paired_packed"] = l.paired_packed.total();
  j["tokens_shared_packed"] = l.shared_packed.total();
  j["padding_paired_packed"] = l.paired_packed.padding;
  j["padding_shared_packed"] = l.shared_packed.padding;
  j["rows_paired_packed"] = l.paired_packed.rows;
  j["rows_shared_packed"] = l.shared_packed.rows;
  j["speedup_shared"] = speedup(l.paired_unpacked, l.shared_unpacked);
  j["speedup_paired_packed"] = speedup(l.paired_unpacked, l.paired_packed);
  j["speedup_shared_packed"] = speedup(l.paired_unpacked, l.shared_packed);
  return j;
}

std::string stats_text(const DataReport& r, const DatasetStats* s) {
  std::string out = fmt::format("{}{}\n", r.file, r.compression == "none" ? "" : fmt::format(" ({})", r.compression));
  out += fmt::format("chat template: {}\n", r.template_description);
  out += fmt::format("examples: {} read, {} kept, {} dropped{}\n", r.examples_read, r.kept, r.dropped_total(),
                     r.dropped.empty() ? "" : fmt::format(" ({})", reasons_text(r.dropped)));
  if (!r.formats.empty()) out += fmt::format("formats: {}\n", reasons_text(r.formats));
  out += fmt::format("truncated: {} prompts, {} examples with responses cut (max_length {}, max_prompt_length {}; "
                     "0 = no limit)\n",
                     r.prompt_truncated, r.responses_truncated, r.truncation.max_length,
                     r.truncation.max_prompt_length);
  for (const auto& note : r.notes) out += fmt::format("note: {}\n", note);
  if (!s) return out + "no examples kept: no lengths or layout totals\n";

  out += fmt::format("\n{:<10}{:>8}{:>8}{:>8}{:>8}{:>8}{:>8}{:>8}{:>8}{:>10}\n", "tokens", "min", "p10", "p25", "p50",
                     "p75", "p90", "p99", "max", "mean");
  for (const auto& [name, l] : {std::pair{"prompt", &s->prompt}, {"chosen", &s->chosen}, {"rejected", &s->rejected}})
    out += fmt::format("{:<10}{:>8}{:>8}{:>8}{:>8}{:>8}{:>8}{:>8}{:>8}{:>10.1f}\n", name, l->min, l->p10, l->p25,
                       l->p50, l->p75, l->p90, l->p99, l->max, l->mean);
  out += fmt::format("\nmedian prompt/completion ratio r = {:.2f}; shared/paired ceiling (2r+2)/(r+2) = {:.3f}\n",
                     s->median_ratio, s->ratio_ceiling);
  out += fmt::format("\nlayout (pack_tokens {}{}){:>10}{:>14}{:>12}{:>14}{:>9}\n", s->pack_tokens,
                     s->pack_tokens_automatic ? ", automatic" : "", "rows", "tokens", "padding", "total", "speedup");
  const auto& l = s->layouts;
  const std::pair<const char*, const layout::LayoutTotals*> rows[] = {{"paired", &l.paired_unpacked},
                                                                      {"shared", &l.shared_unpacked},
                                                                      {"paired+packed", &l.paired_packed},
                                                                      {"shared+packed", &l.shared_packed}};
  const size_t label_width = fmt::format("layout (pack_tokens {}{})", s->pack_tokens,
                                         s->pack_tokens_automatic ? ", automatic" : "")
                                 .size();
  for (const auto& [name, t] : rows)
    out += fmt::format("{:<{}}{:>10}{:>14}{:>12}{:>14}{:>8.3f}x\n", name, label_width, t->rows, t->tokens, t->padding,
                       t->total(), speedup(l.paired_unpacked, *t));
  // Why packing can show no gain here: the unpacked baseline is counted at exact lengths.
  out += "(unpacked rows are counted at their exact length, as a variable-length engine runs them; a padded\n"
         " batch baseline would add its padding, which packing removes)\n";
  return out;
}

}  // namespace duet::data
