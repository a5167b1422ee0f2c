#include "trainer/reference_cache.hpp"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "layout/pack_rows.hpp"
#include "util/error.hpp"
#include "util/json_integer.hpp"
#include "util/read_file.hpp"

namespace duet::trainer {

namespace {

constexpr const char* kFormat = "duet-ref-cache/1";


uint64_t parse_hex(const std::string& s, const std::string& where) {
  try {
    size_t used = 0;
    uint64_t v = std::stoull(s, &used, 16);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  fail("{}: '{}' is not a hash", where, s);
}

}  // namespace

uint64_t hash_tokens(const layout::TokenizedExample& e) {
  // Lengths are hashed too, so that moving a token between segments changes it.
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  auto add = [&](const std::vector<layout::TokenId>& ids) {
    uint64_t n = ids.size();
    XXH3_64bits_update(state, &n, sizeof n);
    XXH3_64bits_update(state, ids.data(), ids.size() * sizeof(layout::TokenId));
  };
  add(e.prompt);
  for (const auto& r : e.responses) add(r);
  uint64_t h = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return h;
}

std::string hash_hex(uint64_t h) { return fmt::format("{:016x}", h); }

uint64_t hash_examples(std::span<const layout::TokenizedExample> examples) {
  std::vector<uint64_t> hashes;
  hashes.reserve(examples.size());
  for (const auto& e : examples) hashes.push_back(hash_tokens(e));
  return XXH3_64bits(hashes.data(), hashes.size() * sizeof(uint64_t));
}

uint64_t hash_weights(const engine::ParameterSet<float>& params) {
  return XXH3_64bits(params.values().data(), params.values().size() * sizeof(float));
}

void ReferenceCache::build(const std::filesystem::path& file, engine::Engine& reference,
                           std::span<const layout::TokenizedExample> examples, int64_t pack_tokens) {
  std::unordered_map<int64_t, std::vector<double>> logps;
  for (const auto& row : layout::pack_examples(examples, layout::Layout::shared, pack_tokens, 0)) {
    const auto batch = engine::make_batch(row);
    for (const auto& r : reference.score_policy(batch)) {
      auto& v = logps[r.example];
      if (v.size() <= static_cast<size_t>(r.response)) v.resize(static_cast<size_t>(r.response) + 1);
      v[static_cast<size_t>(r.response)] = r.logp;
    }
  }
  const std::filesystem::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << nlohmann::json{{"format", kFormat}, {"weights_xxh3", hash_hex(hash_weights(reference.master_weights()))}, {"examples", examples.size()}}.dump()
        << "\n";
    for (const auto& e : examples)
      out << nlohmann::json{{"index", e.index}, {"tokens_xxh3", hash_hex(hash_tokens(e))}, {"logps", logps.at(e.index)}}.dump()
          << "\n";
    if (!out) fail("{}: cannot write", tmp.string());
  }
  std::filesystem::rename(tmp, file);
}

ReferenceCache ReferenceCache::load(const std::filesystem::path& file) {
  const auto text = read_file(file);
  if (!text) fail("{}: cannot open the reference cache (make one with duet ref)", file.string());
  return parse(*text, file.string());
}

ReferenceCache ReferenceCache::parse(std::string_view text, const std::string& origin) {
  ReferenceCache c;
  c.file_ = origin;
  int64_t line_number = 0;
  for (size_t start = 0; start < text.size();) {
    const size_t end = std::min(text.find('\n', start), text.size());
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    const std::string where = fmt::format("{}:{}", origin, line_number);
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) fail("{}: not a JSON object: the cache is damaged, rebuild it", where);
    try {
      if (line_number == 1) {
        if (j.value("format", "") != kFormat) fail("{}: not a duet reference cache ({})", where, kFormat);
        c.weights_hash_ = parse_hex(j.at("weights_xxh3"), where);
        continue;
      }
      CachedExample e{parse_hex(j.at("tokens_xxh3"), where), j.at("logps").get<std::vector<double>>()};
      // An integer >= 0: get<int64_t> cast a float such as 1e109 (undefined behaviour, found by fuzzing).
      const auto index = json_integer(j.at("index"));
      if (!index || *index < 0)
        fail("{}: index {} is not an example's index: rebuild the cache", where, j["index"].dump());
      c.examples_[*index] = std::move(e);
    } catch (const nlohmann::json::exception& e) {
      fail("{}: incomplete entry ({}): rebuild the cache", where, e.what());
    }
  }
  if (line_number == 0) fail("{}: empty reference cache", origin);
  return c;
}

void ReferenceCache::check(std::span<const layout::TokenizedExample> examples) const {
  for (const auto& e : examples) {
    auto it = examples_.find(e.index);
    if (it == examples_.end())
      fail("{}: example {} is not in the reference cache: it was built from other data", file_.string(), e.index);
    if (it->second.tokens_hash != hash_tokens(e))
      fail("{}: example {} has other tokens than when the cache was built (dataset, tokenizer, template or "
           "truncation changed): rebuild it with duet ref", file_.string(), e.index);
    if (it->second.logps.size() != e.responses.size())
      fail("{}: example {} has {} responses in the cache, {} now", file_.string(), e.index, it->second.logps.size(),
           e.responses.size());
  }
}

std::vector<engine::ResponseLogp> ReferenceCache::scores(const engine::Batch& batch) const {
  std::vector<engine::ResponseLogp> out;
  for (const auto& r : batch.responses)
    out.push_back({r.example, r.response, examples_.at(r.example).logps.at(static_cast<size_t>(r.response)), r.num_tokens});
  return out;
}

}  // namespace duet::trainer
