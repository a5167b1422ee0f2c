#pragma once
// Typed readers for the values of one dataset line: each returns the value,
// or records a Problem (naming the field) and returns nullopt.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/problem.hpp"
#include "data/raw_example.hpp"

namespace duet::data {

class ProblemSink {
 public:
  ProblemSink(int64_t line, std::vector<Problem>& out) : line_(line), out_(out) {}
  void add(std::string_view kind, std::string field, std::string message) {
    out_.push_back(Problem{line_, std::move(field), std::string(kind), std::move(message)});
  }
  size_t count() const { return out_.size(); }

 private:
  int64_t line_;
  std::vector<Problem>& out_;
};

// "a string", "a number", ... for messages.
std::string_view json_kind(const nlohmann::json& v);

// "a, b, c" (the object's keys), or "none": for missing-column messages.
std::string json_key_list(const nlohmann::json& object);

// A non-empty string.
std::optional<std::string> read_text(const nlohmann::json& v, const std::string& field, ProblemSink& sink);

// A non-empty list of {role, content} messages, roles system/user/assistant,
// contents non-empty strings.
std::optional<Conversation> read_conversation(const nlohmann::json& v, const std::string& field,
                                              ProblemSink& sink);

// A non-empty list of token ids (integers in [0, 2^32)).
std::optional<std::vector<uint32_t>> read_ids(const nlohmann::json& v, const std::string& field,
                                              ProblemSink& sink);

}  // namespace duet::data
