// json_path_at: the field named for any byte inside any string value of a
// random JSON document is that value's path.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "data/json_location.hpp"
#include "helpers.hpp"

namespace duet::data {
namespace {

using nlohmann::json;
using testing::fresh_seed;
using testing::random_text;
using testing::seed_trace;
using testing::uniform;

// Serialises like json::dump() while recording, for every string value, its
// path and the byte range of its contents.
struct Span {
  std::string path;
  size_t begin, end;
};

void emit(const json& v, const std::string& path, std::string& out, std::vector<Span>& spans) {
  if (v.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& [key, value] : v.items()) {
      if (!first) out += ", ";
      first = false;
      out += json(key).dump();
      out += ": ";
      emit(value, path.empty() ? key : fmt::format("{}.{}", path, key), out, spans);
    }
    out += '}';
  } else if (v.is_array()) {
    out += '[';
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out += ", ";
      emit(v[i], fmt::format("{}[{}]", path, i), out, spans);
    }
    out += ']';
  } else if (v.is_string()) {
    const std::string s = v.dump();
    spans.push_back({path, out.size() + 1, out.size() + s.size() - 1});
    out += s;
  } else {
    out += v.dump();
  }
}

json random_value(std::mt19937_64& rng, int depth) {
  const int64_t kind = depth > 2 ? uniform(rng, 2, 3) : uniform(rng, 0, 3);
  if (kind == 0) {
    json o = json::object();
    for (int64_t i = uniform(rng, 1, 4); i > 0; --i) o[fmt::format("k{}", uniform(rng, 0, 99))] = random_value(rng, depth + 1);
    return o;
  }
  if (kind == 1) {
    json a = json::array();
    for (int64_t i = uniform(rng, 1, 4); i > 0; --i) a.push_back(random_value(rng, depth + 1));
    return a;
  }
  if (kind == 2) return fmt::format("{}\"\\,:{{}}[]", random_text(rng, 10));
  return uniform(rng, -5, 5);
}

TEST(JsonLocation, NamesThePathOfEveryStringByte) {
  for (int round = 0; round < 200; ++round) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed_trace(seed));
    std::mt19937_64 rng(seed);
    json doc = json::object();
    for (int64_t i = uniform(rng, 1, 4); i > 0; --i) doc[fmt::format("f{}", i)] = random_value(rng, 0);
    std::string text;
    std::vector<Span> spans;
    emit(doc, "", text, spans);
    for (const Span& s : spans)
      for (size_t at = s.begin; at < s.end; ++at) ASSERT_EQ(json_path_at(text, at), s.path) << text << " @" << at;
  }
}

TEST(JsonLocation, OutsideAnyFieldAndInsideKeys) {
  EXPECT_EQ(json_path_at("{\"a\": 1}", 0), "(line)");
  EXPECT_EQ(json_path_at("{\"abc\": 1}", 3), "(a key)");
  EXPECT_EQ(json_path_at("{\"a\": {\"bc\": 1}}", 9), "a (a key)");
  EXPECT_EQ(json_path_at("  garbage", 4), "(line)");
}

}  // namespace
}  // namespace duet::data
