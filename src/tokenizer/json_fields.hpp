#pragma once
// Typed access to tokenizer.json fields with errors that name the component
// and the field, so a malformed file fails with one clear line.
#include <string>

#include <nlohmann/json.hpp>

#include "util/error.hpp"

namespace duet::tok {

using json = nlohmann::json;

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
    return v.get<T>();
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
    return it->get<T>();
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
