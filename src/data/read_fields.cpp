#include "data/read_fields.hpp"

#include <fmt/format.h>

namespace duet::data {

using nlohmann::json;

std::string_view json_kind(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "a list";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "a number";
    default: return "an unsupported value";
  }
}

std::string json_key_list(const json& object) {
  std::string keys;
  for (const auto& [key, value] : object.items()) keys += (keys.empty() ? "" : ", ") + key;
  return keys.empty() ? "none" : keys;
}

std::optional<std::string> read_text(const json& v, const std::string& field, ProblemSink& sink) {
  if (!v.is_string()) {
    sink.add(problem::wrong_type, field, fmt::format("expected a string, got {}", json_kind(v)));
    return std::nullopt;
  }
  std::string s = v.get<std::string>();
  if (s.empty()) {
    sink.add(problem::empty, field, "is an empty string; fill it in or remove the example");
    return std::nullopt;
  }
  return s;
}

namespace {

std::optional<Message> read_message(const json& m, const std::string& field, ProblemSink& sink) {
  if (!m.is_object()) {
    sink.add(problem::wrong_type, field,
             fmt::format("expected a message {{\"role\": ..., \"content\": ...}}, got {}", json_kind(m)));
    return std::nullopt;
  }
  const size_t before = sink.count();
  Message out;
  auto role = m.find("role");
  if (role == m.end()) {
    sink.add(problem::missing_field, field + ".role", "the message has no 'role'");
  } else if (!role->is_string()) {
    sink.add(problem::wrong_type, field + ".role", fmt::format("expected a string, got {}", json_kind(*role)));
  } else {
    out.role = role->get<std::string>();
    if (out.role != "system" && out.role != "user" && out.role != "assistant")
      sink.add(problem::unsupported, field + ".role",
               fmt::format("role '{}' is not supported; use system, user or assistant", out.role));
  }
  auto content = m.find("content");
  if (content == m.end()) {
    sink.add(problem::missing_field, field + ".content", "the message has no 'content'");
  } else if (!content->is_string()) {
    sink.add(problem::wrong_type, field + ".content",
             fmt::format("expected a string, got {} (multimodal content parts are not supported)",
                         json_kind(*content)));
  } else {
    out.content = content->get<std::string>();
    if (out.content.empty())
      sink.add(problem::empty, field + ".content", "is an empty string; fill it in or remove the example");
  }
  if (sink.count() != before) return std::nullopt;
  return out;
}

}  // namespace

std::optional<Conversation> read_conversation(const json& v, const std::string& field, ProblemSink& sink) {
  if (!v.is_array()) {
    sink.add(problem::wrong_type, field, fmt::format("expected a list of messages, got {}", json_kind(v)));
    return std::nullopt;
  }
  if (v.empty()) {
    sink.add(problem::empty, field, "is an empty list of messages; fill it in or remove the example");
    return std::nullopt;
  }
  const size_t before = sink.count();
  Conversation out;
  for (size_t i = 0; i < v.size(); ++i)
    if (auto m = read_message(v[i], fmt::format("{}[{}]", field, i), sink)) out.push_back(std::move(*m));
  if (sink.count() != before) return std::nullopt;
  return out;
}

std::optional<std::vector<uint32_t>> read_ids(const json& v, const std::string& field, ProblemSink& sink) {
  if (!v.is_array()) {
    sink.add(problem::wrong_type, field, fmt::format("expected a list of token ids, got {}", json_kind(v)));
    return std::nullopt;
  }
  if (v.empty()) {
    sink.add(problem::empty, field, "is an empty list of token ids; fill it in or remove the example");
    return std::nullopt;
  }
  std::vector<uint32_t> ids;
  ids.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const json& id = v[i];
    if (!id.is_number_integer() || (id.is_number_unsigned() ? id.get<uint64_t>() > UINT32_MAX : id.get<int64_t>() < 0)) {
      sink.add(problem::wrong_type, fmt::format("{}[{}]", field, i),
               fmt::format("expected a token id (an integer from 0 to 4294967295), got {}", id.dump()));
      return std::nullopt;
    }
    ids.push_back(static_cast<uint32_t>(id.get<uint64_t>()));
  }
  return ids;
}

}  // namespace duet::data
