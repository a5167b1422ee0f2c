#include "data/parse_example.hpp"

#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "data/implicit_prompt.hpp"
#include "data/parse_pretokenized.hpp"
#include "data/json_location.hpp"
#include "data/read_fields.hpp"
#include "util/utf8.hpp"

namespace duet::data {

using nlohmann::json;

namespace {

// nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 7: x"
// -> "column 7: x" (a dataset line is always JSON line 1).
std::string clean_parse_message(std::string what) {
  if (auto p = what.find("] "); p != std::string::npos) what.erase(0, p + 2);
  for (std::string_view prefix : {"parse error at line 1, ", "parse error: "})
    if (what.starts_with(prefix)) what.erase(0, prefix.size());
  return what;
}

std::optional<json> parse_json(std::string_view line, ProblemSink& sink) {
  if (auto bad = utf8::find_invalid(line)) {
    sink.add(problem::invalid_utf8, json_path_at(line, *bad),
             fmt::format("invalid UTF-8 at byte {} of the line; convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)",
                         *bad + 1));
    return std::nullopt;
  }
  try {
    return json::parse(line);
  } catch (const json::parse_error& e) {
    const size_t at = e.byte > 0 ? e.byte - 1 : 0;
    std::string message = clean_parse_message(e.what());
    if (message.find("surrogate") != std::string::npos)
      sink.add(problem::invalid_utf8, json_path_at(line, at),
               fmt::format("a \\u escape encodes a lone surrogate, which is not valid UTF-8 ({})", message));
    else
      sink.add(problem::malformed_json, json_path_at(line, at), "malformed JSON: " + message);
    return std::nullopt;
  } catch (const json::out_of_range& e) {  // a number beyond a double's range, e.g. 1e999 (found by fuzzing)
    sink.add(problem::malformed_json, json_path_at(line, 0), "malformed JSON: " + clean_parse_message(e.what()));
    return std::nullopt;
  }
}


// The response values and their field names, in rank order.
struct ResponseFields {
  std::vector<const json*> values;
  std::vector<std::string> names;
};

std::optional<ResponseFields> response_fields(const json& obj, bool ranked, const ColumnNames& c,
                                              ProblemSink& sink) {
  ResponseFields out;
  if (ranked) {
    const json& list = obj.at(c.responses);
    if (!list.is_array()) {
      sink.add(problem::wrong_type, c.responses,
               fmt::format("expected a list of responses (best first), got {}", json_kind(list)));
      return std::nullopt;
    }
    if (list.size() < 2) {
      sink.add(problem::missing_field, c.responses,
               fmt::format("holds {} response(s); a preference example needs at least 2", list.size()));
      return std::nullopt;
    }
    for (size_t i = 0; i < list.size(); ++i) {
      out.values.push_back(&list[i]);
      out.names.push_back(fmt::format("{}[{}]", c.responses, i));
    }
    return out;
  }
  bool ok = true;
  for (const std::string* name : {&c.chosen, &c.rejected}) {
    auto it = obj.find(*name);
    if (it == obj.end()) {
      sink.add(problem::missing_field, *name,
               fmt::format("missing (the line has: {}); rename columns with --column {}=KEY",
                           json_key_list(obj), name == &c.chosen ? "chosen" : "rejected"));
      ok = false;
      continue;
    }
    out.values.push_back(&*it);
    out.names.push_back(*name);
  }
  if (!ok) return std::nullopt;
  return out;
}

void check_distinct(const RawExample& ex, const std::vector<std::string>& names, ProblemSink& sink) {
  const size_t k = ex.num_responses();
  for (size_t j = 1; j < k; ++j)
    for (size_t i = 0; i < j; ++i) {
      bool same = ex.format == Format::standard         ? ex.response_texts[i] == ex.response_texts[j]
                  : ex.format == Format::conversational ? ex.response_chats[i] == ex.response_chats[j]
                                                        : ex.response_ids[i] == ex.response_ids[j];
      if (same) {
        sink.add(problem::identical, names[j],
                 fmt::format("is identical to {}; a preference needs different responses", names[i]));
        return;
      }
    }
}

// A response is one or more assistant messages (earlier turns belong in the prompt).
void check_response_roles(const Conversation& c, const std::string& field, ProblemSink& sink) {
  for (size_t i = 0; i < c.size(); ++i)
    if (c[i].role != "assistant") {
      sink.add(problem::unsupported, fmt::format("{}[{}].role", field, i),
               fmt::format("is '{}'; a response holds only assistant messages (earlier turns belong in the prompt)",
                           c[i].role));
      return;
    }
}

void check_prompt_end(const Conversation& prompt, const std::string& field, ProblemSink& sink) {
  if (prompt.back().role != "user")
    sink.add(problem::unsupported, fmt::format("{}[{}].role", field, prompt.size() - 1),
             fmt::format("the prompt ends with a '{}' message; it must end with a user message (the prompt is "
                         "rendered with add_generation_prompt)",
                         prompt.back().role));
}

void read_preference(const json& obj, bool ranked, const ColumnNames& c, RawExample& ex, ProblemSink& sink) {
  ex.ranked = ranked;
  auto fields = response_fields(obj, ranked, c, sink);
  auto prompt_it = obj.find(c.prompt);
  const bool has_prompt = prompt_it != obj.end();
  if (!fields) return;
  // The first response decides the kind; the others and the prompt must match.
  const json& first = *fields->values[0];
  if (!first.is_string() && !first.is_array()) {
    sink.add(problem::wrong_type, fields->names[0],
             fmt::format("expected a string or a list of {{role, content}} messages, got {}", json_kind(first)));
    return;
  }
  const bool chat = first.is_array();
  ex.format = chat ? Format::conversational : Format::standard;
  const std::string_view kind = chat ? "a list of messages" : "a string";
  auto same_kind = [&](const json& v, const std::string& name) {
    if (v.is_array() == chat && (chat || v.is_string())) return true;
    sink.add(problem::wrong_type, name,
             fmt::format("expected {} like {}, got {}", kind, fields->names[0], json_kind(v)));
    return false;
  };
  for (size_t r = 1; r < fields->values.size(); ++r) same_kind(*fields->values[r], fields->names[r]);
  if (has_prompt) same_kind(*prompt_it, c.prompt);
  if (sink.count() > 0) return;

  const size_t before = sink.count();
  if (chat) {
    std::vector<Conversation> responses;
    for (size_t r = 0; r < fields->values.size(); ++r)
      if (auto conv = read_conversation(*fields->values[r], fields->names[r], sink)) responses.push_back(std::move(*conv));
    std::optional<Conversation> prompt;
    if (has_prompt) prompt = read_conversation(*prompt_it, c.prompt, sink);
    if (sink.count() != before) return;
    if (has_prompt) {
      ex.prompt_chat = std::move(*prompt);
      ex.response_chats = std::move(responses);
    } else {
      ex.implicit_prompt = true;
      // Identical conversations would leave nothing for either response: say so plainly.
      ex.response_chats = responses;
      check_distinct(ex, fields->names, sink);
      if (sink.count() != before) return;
      ex.response_chats.clear();
      split_implicit_prompt(ex, responses, fields->names, c, sink);
      if (sink.count() != before) return;
    }
    check_prompt_end(ex.prompt_chat, c.prompt, sink);
    for (size_t r = 0; r < ex.response_chats.size(); ++r) check_response_roles(ex.response_chats[r], fields->names[r], sink);
  } else {
    std::vector<std::string> responses;
    for (size_t r = 0; r < fields->values.size(); ++r)
      if (auto t = read_text(*fields->values[r], fields->names[r], sink)) responses.push_back(std::move(*t));
    std::optional<std::string> prompt;
    if (has_prompt) prompt = read_text(*prompt_it, c.prompt, sink);
    if (sink.count() != before) return;
    if (has_prompt) {
      ex.prompt_text = std::move(*prompt);
      ex.response_texts = std::move(responses);
    } else {
      ex.implicit_prompt = true;
      // Identical full texts would leave nothing for either response: say so plainly.
      ex.response_texts = responses;
      check_distinct(ex, fields->names, sink);
      if (sink.count() != before) return;
      ex.response_texts.clear();
      split_implicit_prompt(ex, responses, fields->names, c, sink);
    }
  }
  if (sink.count() != before) return;
  check_distinct(ex, fields->names, sink);
}

}  // namespace

ParsedLine parse_example_line(std::string_view line, int64_t line_number, const ColumnNames& columns) {
  ParsedLine out;
  ProblemSink sink(line_number, out.problems);
  auto parsed = parse_json(line, sink);
  if (!parsed) return out;
  const json& obj = *parsed;
  if (!obj.is_object()) {
    sink.add(problem::wrong_type, "(line)", fmt::format("expected a JSON object per line, got {}", json_kind(obj)));
    return out;
  }
  RawExample ex;
  ex.line = line_number;
  const auto& c = columns;
  if (obj.contains(c.prompt_ids) || obj.contains(c.chosen_ids) || obj.contains(c.rejected_ids)) {
    read_pretokenized(obj, c, ex, sink);
    if (sink.count() == 0) check_distinct(ex, {c.chosen_ids, c.rejected_ids}, sink);
  } else if (obj.contains(c.responses)) {
    read_preference(obj, true, c, ex, sink);
  } else if (obj.contains(c.chosen) || obj.contains(c.rejected)) {
    read_preference(obj, false, c, ex, sink);
  } else {
    sink.add(problem::missing_field, "(line)",
             fmt::format("no preference columns: expected '{}' and '{}' (with or without '{}'), '{}', or '{}'/'{}'/'{}'; "
                         "the line has: {}. Map your column names with --column chosen=KEY etc.",
                         c.chosen, c.rejected, c.prompt, c.responses, c.prompt_ids, c.chosen_ids, c.rejected_ids,
                         json_key_list(obj)));
  }
  if (out.problems.empty()) out.example = std::move(ex);
  return out;
}

}  // namespace duet::data
