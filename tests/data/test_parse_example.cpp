// parse_example_line: every accepted format, and every kind of bad line
// reported with its line number, field and kind.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "data/parse_example.hpp"
#include "helpers.hpp"
#include "util/error.hpp"

namespace duet::data {
namespace {

using nlohmann::json;
using testing::fresh_seed;
using testing::random_text;
using testing::seed_trace;
using testing::uniform;

ParsedLine parse(const std::string& line, int64_t number = 7, const ColumnNames& columns = {}) {
  return parse_example_line(line, number, columns);
}

// Exactly one problem, of `kind`, on `field`, at line 7.
void expect_problem(const std::string& line, std::string_view kind, const std::string& field) {
  SCOPED_TRACE(line);
  ParsedLine p = parse(line);
  EXPECT_FALSE(p.example.has_value());
  ASSERT_EQ(p.problems.size(), 1u) << (p.problems.empty() ? "" : p.problems[0].message);
  EXPECT_EQ(p.problems[0].kind, kind) << p.problems[0].message;
  EXPECT_EQ(p.problems[0].field, field) << p.problems[0].message;
  EXPECT_EQ(p.problems[0].line, 7);
  EXPECT_FALSE(p.problems[0].message.empty());
}

json msg(const std::string& role, const std::string& content) { return {{"role", role}, {"content", content}}; }

json random_conversation(std::mt19937_64& rng, const std::string& last_role, int64_t max_turns) {
  json c = json::array();
  const int64_t n = uniform(rng, 1, max_turns);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t from_end = n - 1 - i;  // the last message has last_role, earlier ones alternate
    const std::string role = from_end == 0 ? last_role : (from_end % 2 ? "assistant" : "user");
    c.push_back(msg(role, random_text(rng, 12)));
  }
  return c;
}

TEST(ParseExample, StandardStrings) {
  for (int i = 0; i < 200; ++i) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed_trace(seed));
    std::mt19937_64 rng(seed);
    const std::string prompt = random_text(rng, 30), chosen = random_text(rng, 30);
    std::string rejected = random_text(rng, 30);
    if (rejected == chosen) rejected += "x";
    ParsedLine p = parse(json{{"prompt", prompt}, {"chosen", chosen}, {"rejected", rejected}, {"extra", 1}}.dump());
    ASSERT_TRUE(p.example) << p.problems[0].message;
    EXPECT_EQ(p.example->format, Format::standard);
    EXPECT_EQ(p.example->line, 7);
    EXPECT_EQ(p.example->prompt_text, prompt);
    EXPECT_EQ(p.example->response_texts, (std::vector<std::string>{chosen, rejected}));
    EXPECT_FALSE(p.example->implicit_prompt);
    EXPECT_FALSE(p.example->ranked);
  }
}

TEST(ParseExample, ConversationalMessages) {
  for (int i = 0; i < 100; ++i) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed_trace(seed));
    std::mt19937_64 rng(seed);
    json prompt = random_conversation(rng, "user", 5);
    if (uniform(rng, 0, 1)) prompt.insert(prompt.begin(), msg("system", random_text(rng, 10)));
    json chosen = json::array({msg("assistant", random_text(rng, 20))});
    json rejected = json::array({msg("assistant", random_text(rng, 20) + "!")});
    ParsedLine p = parse(json{{"prompt", prompt}, {"chosen", chosen}, {"rejected", rejected}}.dump());
    ASSERT_TRUE(p.example) << p.problems[0].message;
    EXPECT_EQ(p.example->format, Format::conversational);
    ASSERT_EQ(p.example->prompt_chat.size(), prompt.size());
    for (size_t m = 0; m < prompt.size(); ++m) {
      EXPECT_EQ(p.example->prompt_chat[m].role, prompt[m]["role"].get<std::string>());
      EXPECT_EQ(p.example->prompt_chat[m].content, prompt[m]["content"].get<std::string>());
    }
    ASSERT_EQ(p.example->response_chats.size(), 2u);
    EXPECT_EQ(p.example->response_chats[1][0].content, rejected[0]["content"].get<std::string>());
  }
}

TEST(ParseExample, ImplicitPromptIsTheSharedLeadingMessages) {
  for (int i = 0; i < 100; ++i) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed_trace(seed));
    std::mt19937_64 rng(seed);
    json shared = random_conversation(rng, "user", 5);
    json chosen = shared, rejected = shared;
    chosen.push_back(msg("assistant", fmt::format("A{}", random_text(rng, 20))));
    rejected.push_back(msg("assistant", fmt::format("B{}", random_text(rng, 20))));
    ParsedLine p = parse(json{{"chosen", chosen}, {"rejected", rejected}}.dump());
    ASSERT_TRUE(p.example) << p.problems[0].message;
    EXPECT_TRUE(p.example->implicit_prompt);
    EXPECT_EQ(p.example->prompt_chat.size(), shared.size());
    ASSERT_EQ(p.example->response_chats[0].size(), 1u);
    EXPECT_EQ(p.example->response_chats[0][0].content, chosen.back()["content"].get<std::string>());
    EXPECT_EQ(p.example->response_chats[1][0].content, rejected.back()["content"].get<std::string>());
  }
}

TEST(ParseExample, ImplicitPromptFromTextsKeepsTheSpaceWithTheResponses) {
  ParsedLine p = parse(R"({"chosen": "Human: hi Assistant: hello", "rejected": "Human: hi Assistant: go"})");
  ASSERT_TRUE(p.example);
  EXPECT_EQ(p.example->prompt_text, "Human: hi Assistant:");
  EXPECT_EQ(p.example->response_texts, (std::vector<std::string>{" hello", " go"}));
  // A difference inside a multi-byte character cuts before that character.
  ParsedLine u = parse(R"({"chosen": "Q: é", "rejected": "Q: è"})");
  ASSERT_TRUE(u.example);
  EXPECT_EQ(u.example->prompt_text, "Q:");
  EXPECT_EQ(u.example->response_texts, (std::vector<std::string>{" é", " è"}));
}

TEST(ParseExample, RankedResponsesBestFirst) {
  ParsedLine p = parse(R"({"prompt": "p", "responses": ["best", "middle", "worst"]})");
  ASSERT_TRUE(p.example);
  EXPECT_TRUE(p.example->ranked);
  EXPECT_EQ(p.example->response_texts, (std::vector<std::string>{"best", "middle", "worst"}));
  ParsedLine c = parse(
      R"({"prompt": [{"role":"user","content":"q"}], "responses": [[{"role":"assistant","content":"a"}], [{"role":"assistant","content":"b"}]]})");
  ASSERT_TRUE(c.example);
  EXPECT_EQ(c.example->format, Format::conversational);
  EXPECT_EQ(c.example->response_chats.size(), 2u);
}

TEST(ParseExample, PreTokenized) {
  ParsedLine p = parse(R"({"prompt_input_ids": [1, 2, 4294967295], "chosen_input_ids": [0], "rejected_input_ids": [5, 6]})");
  ASSERT_TRUE(p.example);
  EXPECT_EQ(p.example->format, Format::pretokenized);
  EXPECT_EQ(p.example->prompt_ids, (std::vector<uint32_t>{1, 2, 4294967295u}));
  EXPECT_EQ(p.example->response_ids, (std::vector<std::vector<uint32_t>>{{0}, {5, 6}}));
}

TEST(ParseExample, ConfigurableColumnNames) {
  ColumnNames c;
  c.apply(std::vector<std::string>{"prompt=question", "chosen=good", "rejected=bad"});
  ParsedLine p = parse(R"({"question": "q", "good": "g", "bad": "b"})", 1, c);
  ASSERT_TRUE(p.example);
  EXPECT_EQ(p.example->prompt_text, "q");
  EXPECT_THROW(c.apply("answer=x"), Error);
  EXPECT_THROW(c.apply("prompt"), Error);
  EXPECT_THROW(c.apply("prompt="), Error);
}

TEST(ParseExample, MalformedJsonNamesTheField) {
  expect_problem(R"({"prompt": "p", "chosen": "a", "rejected": )", problem::malformed_json, "rejected");
  expect_problem(R"({"prompt": "p" "chosen": "a"})", problem::malformed_json, "prompt");
  expect_problem("not json", problem::malformed_json, "(line)");
  expect_problem(R"({"prompt": "p", "chosen": "a", "rejected": "b"} trailing)", problem::malformed_json, "(line)");
}

TEST(ParseExample, InvalidUtf8NamesTheField) {
  expect_problem("{\"prompt\": \"caf\xE9\", \"chosen\": \"a\", \"rejected\": \"b\"}", problem::invalid_utf8, "prompt");
  expect_problem("{\"prompt\": [{\"role\": \"user\", \"content\": \"\xC0\xAF\"}], \"chosen\": []}", problem::invalid_utf8,
                 "prompt[0].content");
  expect_problem(R"({"prompt": "p", "chosen": "\ud800", "rejected": "b"})", problem::invalid_utf8, "chosen");
}

TEST(ParseExample, NotAnObject) {
  expect_problem(R"(["prompt", "chosen"])", problem::wrong_type, "(line)");
  expect_problem(R"("text")", problem::wrong_type, "(line)");
}

TEST(ParseExample, MissingFields) {
  expect_problem(R"({"prompt": "p", "chosen": "a"})", problem::missing_field, "rejected");
  expect_problem(R"({"prompt": "p", "answer": "a"})", problem::missing_field, "(line)");
  expect_problem(R"({"prompt_input_ids": [1], "chosen_input_ids": [2]})", problem::missing_field, "rejected_input_ids");
  expect_problem(R"({"prompt": [{"role": "user"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]})",
                 problem::missing_field, "prompt[0].content");
  expect_problem(R"({"prompt": "p", "responses": ["only one"]})", problem::missing_field, "responses");
  // Implicit prompt without any shared beginning.
  expect_problem(R"({"chosen": "abc", "rejected": "xyz"})", problem::missing_field, "prompt");
  expect_problem(R"({"chosen": [{"role":"user","content":"a"},{"role":"assistant","content":"b"}], "rejected": [{"role":"user","content":"c"},{"role":"assistant","content":"d"}]})",
                 problem::missing_field, "prompt");
}

TEST(ParseExample, MistypedFields) {
  expect_problem(R"({"prompt": "p", "chosen": 3, "rejected": "b"})", problem::wrong_type, "chosen");
  expect_problem(R"({"prompt": "p", "chosen": "a", "rejected": null})", problem::wrong_type, "rejected");
  expect_problem(R"({"prompt": [{"role":"user","content":"q"}], "chosen": "a", "rejected": "b"})", problem::wrong_type, "prompt");
  expect_problem(R"({"prompt": [{"role":"user","content":"q"}], "chosen": [{"role":"assistant","content":"a"}], "rejected": "b"})", problem::wrong_type, "rejected");
  expect_problem(R"({"prompt": "p", "responses": "abc"})", problem::wrong_type, "responses");
  expect_problem(R"({"prompt": [{"role":"user","content":["part"]}], "chosen": [{"role":"assistant","content":"a"}], "rejected": [{"role":"assistant","content":"b"}]})",
                 problem::wrong_type, "prompt[0].content");
  expect_problem(R"({"prompt": ["hi"], "chosen": [{"role":"assistant","content":"a"}], "rejected": [{"role":"assistant","content":"b"}]})",
                 problem::wrong_type, "prompt[0]");
  expect_problem(R"({"prompt_input_ids": [1, -2], "chosen_input_ids": [2], "rejected_input_ids": [3]})", problem::wrong_type, "prompt_input_ids[1]");
  expect_problem(R"({"prompt_input_ids": [1], "chosen_input_ids": [2.5], "rejected_input_ids": [3]})", problem::wrong_type, "chosen_input_ids[0]");
  expect_problem(R"({"prompt_input_ids": [1], "chosen_input_ids": [2], "rejected_input_ids": [4294967296]})", problem::wrong_type, "rejected_input_ids[0]");
  expect_problem(R"({"prompt_input_ids": "1 2", "chosen_input_ids": [2], "rejected_input_ids": [3]})", problem::wrong_type, "prompt_input_ids");
}

TEST(ParseExample, EmptyPromptOrResponse) {
  expect_problem(R"({"prompt": "", "chosen": "a", "rejected": "b"})", problem::empty, "prompt");
  expect_problem(R"({"prompt": "p", "chosen": "", "rejected": "b"})", problem::empty, "chosen");
  expect_problem(R"({"prompt": [], "chosen": [{"role":"assistant","content":"a"}], "rejected": [{"role":"assistant","content":"b"}]})", problem::empty, "prompt");
  expect_problem(R"({"prompt": [{"role":"user","content":"q"}], "chosen": [{"role":"assistant","content":""}], "rejected": [{"role":"assistant","content":"b"}]})",
                 problem::empty, "chosen[0].content");
  expect_problem(R"({"prompt_input_ids": [1], "chosen_input_ids": [], "rejected_input_ids": [3]})", problem::empty, "chosen_input_ids");
  // Implicit prompt where one response is all prompt.
  expect_problem(R"({"chosen": [{"role":"user","content":"q"}], "rejected": [{"role":"user","content":"q"},{"role":"assistant","content":"b"}]})",
                 problem::empty, "chosen");
  expect_problem(R"({"chosen": "Q: a", "rejected": "Q: a and more"})", problem::empty, "chosen");
}

TEST(ParseExample, IdenticalResponses) {
  expect_problem(R"({"prompt": "p", "chosen": "same", "rejected": "same"})", problem::identical, "rejected");
  expect_problem(R"({"prompt": "p", "responses": ["a", "b", "a"]})", problem::identical, "responses[2]");
  expect_problem(R"({"prompt": [{"role":"user","content":"q"}], "chosen": [{"role":"assistant","content":"x"}], "rejected": [{"role":"assistant","content":"x"}]})",
                 problem::identical, "rejected");
  expect_problem(R"({"chosen": "Q: a", "rejected": "Q: a"})", problem::identical, "rejected");
  expect_problem(R"({"prompt_input_ids": [1], "chosen_input_ids": [2, 3], "rejected_input_ids": [2, 3]})", problem::identical, "rejected_input_ids");
}

TEST(ParseExample, ConversationsTheTemplatesCannotRender) {
  expect_problem(R"({"prompt": [{"role":"tool","content":"q"}], "chosen": [{"role":"assistant","content":"a"}], "rejected": [{"role":"assistant","content":"b"}]})",
                 problem::unsupported, "prompt[0].role");
  expect_problem(R"({"prompt": [{"role":"user","content":"q"},{"role":"assistant","content":"a"}], "chosen": [{"role":"assistant","content":"a"}], "rejected": [{"role":"assistant","content":"b"}]})",
                 problem::unsupported, "prompt[1].role");
  expect_problem(R"({"prompt": [{"role":"user","content":"q"}], "chosen": [{"role":"assistant","content":"a"},{"role":"user","content":"u"}], "rejected": [{"role":"assistant","content":"b"}]})",
                 problem::unsupported, "chosen[1].role");
}

TEST(ParseExample, SeveralProblemsInOneLineAreAllReported) {
  ParsedLine p = parse(R"({"prompt": "", "chosen": "", "rejected": 5})");
  ASSERT_FALSE(p.example);
  // The mistyped rejected is found first; the empty strings are not read then.
  ASSERT_GE(p.problems.size(), 1u);
  EXPECT_EQ(p.problems[0].field, "rejected");
  ParsedLine q = parse(R"({"prompt": [{"role":"user","content":""}], "chosen": [{"role":"assistant","content":""}], "rejected": [{"role":"assistant","content":"b"}]})");
  ASSERT_EQ(q.problems.size(), 2u);
  EXPECT_EQ(q.problems[0].field, "chosen[0].content");
  EXPECT_EQ(q.problems[1].field, "prompt[0].content");
}

}  // namespace
}  // namespace duet::data

namespace duet::data {
namespace {

// Mutated lines (bytes flipped, cut, inserted) never throw and always give
// either an example or at least one problem, never both.
TEST(ParseExample, MutatedLinesNeverCrash) {
  const std::vector<std::string> seeds = {
      R"({"prompt": "p", "chosen": "a", "rejected": "b"})",
      R"({"prompt": [{"role":"system","content":"s"},{"role":"user","content":"q"}], "chosen": [{"role":"assistant","content":"a"}], "rejected": [{"role":"assistant","content":"b"}]})",
      R"({"chosen": [{"role":"user","content":"q"},{"role":"assistant","content":"a"}], "rejected": [{"role":"user","content":"q"},{"role":"assistant","content":"b"}]})",
      R"({"prompt": "p", "responses": ["a", "b", "c"]})",
      R"({"prompt_input_ids": [1, 2], "chosen_input_ids": [3], "rejected_input_ids": [4]})",
  };
  const char alphabet[] = "{}[]\":,\\ 0-1.eEtrufalsn\xC3\xA9\xFF\x80\xED\xA0\x80uU";
  for (int round = 0; round < 3000; ++round) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed_trace(seed));
    std::mt19937_64 rng(seed);
    std::string line = seeds[static_cast<size_t>(uniform(rng, 0, static_cast<int64_t>(seeds.size()) - 1))];
    for (int64_t m = uniform(rng, 1, 4); m > 0; --m) {
      const size_t at = static_cast<size_t>(uniform(rng, 0, static_cast<int64_t>(line.size()) - 1));
      const char c = alphabet[uniform(rng, 0, sizeof(alphabet) - 2)];
      switch (uniform(rng, 0, 3)) {
        case 0: line[at] = c; break;
        case 1: line.insert(line.begin() + static_cast<ptrdiff_t>(at), c); break;
        case 2: line.erase(at, 1); break;
        default: line.resize(at); break;
      }
      if (line.empty()) line.push_back('x');
    }
    ParsedLine p;
    ASSERT_NO_THROW(p = parse_example_line(line, 1, {})) << line;
    EXPECT_NE(p.example.has_value(), !p.problems.empty()) << line;
  }
}

TEST(ParseExample, DeepNestingIsAProblemNotACrash) {
  const std::string deep = fmt::format(R"({{"prompt": {}{}, "chosen": "a", "rejected": "b"}})",
                                       std::string(100000, '['), std::string(100000, ']'));
  ParsedLine p;
  ASSERT_NO_THROW(p = parse_example_line(deep, 1, {}));
  EXPECT_FALSE(p.example.has_value());
  EXPECT_FALSE(p.problems.empty());
}

}  // namespace
}  // namespace duet::data
