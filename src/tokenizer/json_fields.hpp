#pragma once
// Typed access to tokenizer.json fields with errors that name the component
// and the field, so a malformed file fails with one clear line.
#include <cstdint>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/error.hpp"

namespace duet::tok {

using json = nlohmann::json;

// Token ids index tables sized by the largest id, so they are bounded: 2^24,
// far above any real vocabulary (the largest have ~260k entries).
inline constexpr uint64_t kTokenIdLimit = uint64_t{1} << 24;

namespace detail {
// json -> T; ids (uint32_t, alone, in lists or as map values) must be integers
// in [0, kTokenIdLimit): nlohmann would cast a float or a larger integer
// (undefined behaviour for 1e300, found by fuzzing). Throws json::exception or
// duet::Error.
template <typename T>
T convert(const json& v, const std::string& where, const char* key);
inline uint32_t convert_id(const json& v, const std::string& where, const char* key) {
  if (!v.is_number_unsigned())
    fail("{}: field '{}' must hold token ids (integers >= 0), found {}", where, key, v.dump().substr(0, 40));
  const auto id = v.get<uint64_t>();
  if (id >= kTokenIdLimit) fail("{}: field '{}' has token id {}, beyond the limit {}", where, key, id, kTokenIdLimit);
  return static_cast<uint32_t>(id);
}
template <typename T>
T convert(const json& v, const std::string& where, const char* key) {
  if constexpr (std::is_same_v<T, uint32_t>) {
    return convert_id(v, where, key);
  } else if constexpr (std::is_same_v<T, std::vector<uint32_t>>) {
    if (!v.is_array()) throw json::type_error::create(302, "not an array", &v);
    T out;
    for (const json& x : v) out.push_back(convert_id(x, where, key));
    return out;
  } else if constexpr (std::is_same_v<T, std::unordered_map<std::string, uint32_t>>) {
    if (!v.is_object()) throw json::type_error::create(302, "not an object", &v);
    T out;
    out.reserve(v.size());
    for (const auto& [name, x] : v.items()) out.emplace(name, convert_id(x, where, key));
    return out;
  } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // Integers only, in T's range (a float or a huge number is a wrong type).
    if (v.is_number_unsigned() && std::in_range<T>(v.get<uint64_t>())) return static_cast<T>(v.get<uint64_t>());
    if (v.is_number_integer() && std::in_range<T>(v.get<int64_t>())) return static_cast<T>(v.get<int64_t>());
    throw json::type_error::create(302, "not an integer in range", &v);
  } else {
    return v.get<T>();
  }
}
}  // namespace detail

// `where` names the component, e.g. "pre_tokenizer Split".
inline const json& require(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) fail("{}: missing field '{}'", where, key);
  return *it;
}

template <typename T>
T field(const json& j, const char* key, const std::string& where) {
  const json& v = require(j, key, where);
  try {
    return detail::convert<T>(v, where, key);
  } catch (const json::exception&) {
    fail("{}: field '{}' has the wrong type ({})", where, key, v.type_name());
  }
}

// A list or object field, by reference (no copy of large vocabularies).
inline const json& list_field(const json& j, const char* key, const std::string& where) {
  const json& v = require(j, key, where);
  if (!v.is_array()) fail("{}: field '{}' must be a list, found {}", where, key, v.type_name());
  return v;
}
inline const json& object_field(const json& j, const char* key, const std::string& where) {
  const json& v = require(j, key, where);
  if (!v.is_object()) fail("{}: field '{}' must be an object, found {}", where, key, v.type_name());
  return v;
}

// A field that may be absent or null.
template <typename T>
T field_or(const json& j, const char* key, T fallback, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return detail::convert<T>(*it, where, key);
  } catch (const json::exception&) {
    fail("{}: field '{}' has the wrong type ({})", where, key, it->type_name());
  }
}

inline std::string type_of(const json& j, const std::string& where) {
  if (!j.is_object()) fail("{}: expected an object, found {}", where, j.type_name());
  return field<std::string>(j, "type", where);
}

// HF patterns are {"String": "..."} or {"Regex": "..."}.
struct PatternSpec {
  std::string text;
  bool literal;
};
inline PatternSpec pattern_of(const json& j, const std::string& where) {
  const json& p = require(j, "pattern", where);
  if (p.is_object() && p.contains("String")) return {field<std::string>(p, "String", where), true};
  if (p.is_object() && p.contains("Regex")) return {field<std::string>(p, "Regex", where), false};
  fail("{}: 'pattern' must be {{\"String\": ...}} or {{\"Regex\": ...}}", where);
}

}  // namespace duet::tok
