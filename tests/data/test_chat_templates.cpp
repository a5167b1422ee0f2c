// Built-in chat templates: recognition by substrings, structural properties
// of the renderers on random conversations, and the rejections HF raises.
// The exact texts and ids are checked against Hugging Face in
// test_chat_template_expected.cpp.
#include <gtest/gtest.h>

#include "data/chat_template.hpp"
#include "data/python_strip.hpp"
#include "data/render_example.hpp"
#include "data/template_choice.hpp"
#include "helpers.hpp"
#include "util/error.hpp"

namespace duet::data {
namespace {

using testing::fresh_seed;
using testing::random_text;
using testing::seed_trace;
using testing::uniform;

std::optional<std::string> recognised(std::string_view jinja) {
  std::string note;
  auto t = recognise_chat_template(jinja, note);
  if (!t) return std::nullopt;
  return t->name;
}

TEST(ChatTemplates, RecognisesTheFamiliesByTheirMarkers) {
  EXPECT_EQ(recognised("{{ bos_token }}<|start_header_id|>{{ m }}<|end_header_id|>\n\n{{ c | trim }}<|eot_id|>"
                       "{% if add_generation_prompt %}...{% endif %}"),
            "llama3");
  EXPECT_EQ(recognised("<|start_header_id|>system<|end_header_id|>Cutting Knowledge Date: December 2023<|eot_id|>"),
            "llama3.1");
  EXPECT_EQ(recognised("{{ bos_token + '[INST] ' + '<<SYS>>\\n' + content.strip() + ' [/INST]' }}"), "llama2");
  EXPECT_EQ(recognised("{{ bos_token }}{{ '[INST] ' + message['content'] + ' [/INST]' }}{{ message['content'] + eos_token }}"),
            "mistral");
  EXPECT_EQ(recognised("{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"),
            "chatml");
  EXPECT_EQ(recognised("{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{{'<|im_start|>' + "
                       "message['role'] + '\\n' + message['content'] + '<|im_end|>'}}"),
            "qwen2");
  EXPECT_EQ(recognised("{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
                       "assistant.<|im_end|>\\n' }}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"),
            "qwen2.5");
  EXPECT_EQ(recognised("{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}<think>\\n"), "qwen3");
}

TEST(ChatTemplates, SaysWhyNothingWasRecognised) {
  std::string note;
  EXPECT_FALSE(recognise_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}", note));
  EXPECT_NE(note.find("none of"), std::string::npos) << note;
  // A later Mistral template (system message support) renders differently.
  EXPECT_FALSE(recognise_chat_template("{%- if messages[0]['role'] == 'system' %}{%- set system_message = "
                                       "messages[0]['content'] %}{{ ' [INST] ' + m + ' [/INST]' }}",
                                       note));
  EXPECT_NE(note.find("Mistral"), std::string::npos) << note;
}

TEST(ChatTemplates, ReadsTheDefaultSystemPromptAndDate) {
  std::string note;
  auto t = recognise_chat_template("'<|im_start|>system\\nBe \\'brief\\'.\\tOk<|im_end|>\\n' <|im_start|>", note);
  // A quote inside the literal ends it: no default system prompt then.
  ASSERT_TRUE(t);
  EXPECT_EQ(t->default_system, "");
  t = recognise_chat_template("'<|im_start|>system\\nBe brief.\\tOk<|im_end|>\\n'", note);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->default_system, "Be brief.\tOk");
  t = recognise_chat_template("<|start_header_id|><|eot_id|>Cutting Knowledge Date{% set date_string = \"1 Jan 2025\" %}"
                              "strftime_now",
                              note);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->date_string, "1 Jan 2025");
  EXPECT_NE(note.find("current date"), std::string::npos);
}

TEST(ChatTemplates, UnknownNameListsTheBuiltIns) {
  try {
    builtin_template("vicuna");
    FAIL();
  } catch (const Error& e) {
    for (auto name : builtin_template_names()) EXPECT_NE(std::string(e.what()).find(name), std::string::npos);
  }
}

Conversation random_prompt(std::mt19937_64& rng, bool with_system) {
  Conversation c;
  if (with_system) c.push_back({"system", random_text(rng, 15)});
  const int64_t turns = uniform(rng, 0, 3);
  for (int64_t i = 0; i < turns; ++i) {
    c.push_back({"user", random_text(rng, 15)});
    c.push_back({"assistant", random_text(rng, 15)});
  }
  c.push_back({"user", random_text(rng, 15)});
  return c;
}

// What ends every response: the template's end of turn.
std::string end_of_turn(const ChatTemplate& t) {
  switch (t.family) {
    case TemplateFamily::llama3: return "<|eot_id|>";
    case TemplateFamily::llama2: return " " + t.eos_token;
    case TemplateFamily::mistral: return t.eos_token;
    case TemplateFamily::chatml: return "<|im_end|>\n";
  }
  return "";
}

TEST(ChatTemplates, ThePromptIsAPrefixOfEveryFullConversation) {
  for (auto name : builtin_template_names()) {
    const ChatTemplate t = builtin_template(name);
    for (int round = 0; round < 50; ++round) {
      const uint64_t seed = fresh_seed();
      SCOPED_TRACE(std::string(name) + " " + seed_trace(seed));
      std::mt19937_64 rng(seed);
      const Conversation prompt = random_prompt(rng, t.family != TemplateFamily::mistral && uniform(rng, 0, 1));
      Conversation full = prompt;
      full.push_back({"assistant", random_text(rng, 20)});
      const std::string p = render_chat(t, prompt, true);
      const std::string f = render_chat(t, full, false);
      ASSERT_TRUE(f.starts_with(p)) << p << "\n---\n" << f;
      EXPECT_TRUE(f.ends_with(end_of_turn(t))) << f;
      if (t.family != TemplateFamily::chatml) {
        EXPECT_TRUE(p.starts_with(t.bos_token));
      }
      // Without add_generation_prompt only llama3 and chatml differ.
      const std::string q = render_chat(t, prompt, false);
      EXPECT_EQ(q == p, t.family == TemplateFamily::llama2 || t.family == TemplateFamily::mistral);
    }
  }
}

TEST(ChatTemplates, RejectsWhatHuggingFaceRejects) {
  const Conversation not_alternating = {{"user", "a"}, {"user", "b"}};
  EXPECT_THROW(render_chat(builtin_template("llama2"), not_alternating, true), Error);
  EXPECT_THROW(render_chat(builtin_template("mistral"), not_alternating, true), Error);
  EXPECT_THROW(render_chat(builtin_template("mistral"), {{"system", "s"}, {"user", "q"}}, true), Error);
  EXPECT_THROW(render_chat(builtin_template("llama2"), {{"user", "q"}, {"system", "s"}, {"user", "q"}}, true), Error);
  EXPECT_NO_THROW(render_chat(builtin_template("llama2"), {{"system", "s"}, {"user", "q"}}, true));
}

TEST(ChatTemplates, Qwen3ThinkBlocksOnTheFinalTurn) {
  const ChatTemplate t = builtin_template("qwen3");
  const Conversation prompt = {{"user", "q1"}, {"assistant", "<think>\nold\n</think>\n\na1"}, {"user", "q2"}};
  EXPECT_EQ(render_chat(t, prompt, true),
            "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n<|im_start|>user\nq2<|im_end|>\n"
            "<|im_start|>assistant\n");
  Conversation with_reasoning = prompt, without = prompt;
  with_reasoning.push_back({"assistant", "<think>\n\nR\n</think>\n\n\nA"});
  without.push_back({"assistant", "A"});
  const std::string p = render_chat(t, prompt, true);
  EXPECT_EQ(render_chat(t, with_reasoning, false).substr(p.size()), "<think>\nR\n</think>\n\nA<|im_end|>\n");
  EXPECT_EQ(render_chat(t, without, false).substr(p.size()), "<think>\n\n</think>\n\nA<|im_end|>\n");
}

TEST(ChatTemplates, PythonStripUsesUnicodeWhitespace) {
  EXPECT_EQ(python_strip(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f a b \u00a0\u2028\u3000\u2009\u0085"), "a b");
  EXPECT_EQ(python_strip("\u200b x \u200b"), "\u200b x \u200b");  // ZERO WIDTH SPACE is not whitespace
  EXPECT_EQ(python_strip("   "), "");
  EXPECT_EQ(strip_chars("\n\nx\n", "\n"), "x");
  EXPECT_EQ(lstrip_chars("\n\nx\n", "\n"), "x\n");
  EXPECT_EQ(rstrip_chars("\n\nx\n", "\n"), "\n\nx");
}

TEST(RenderExample, PlainTextPassesThroughUnlessATemplateIsNamed) {
  RawExample ex;
  ex.line = 3;
  ex.format = Format::standard;
  ex.prompt_text = "Q?";
  ex.response_texts = {"A", "B"};
  std::vector<Problem> problems;
  ProblemSink sink(3, problems);
  const TemplateChoice none = choose_template("none", nullptr);
  auto r = render_example(ex, none, "f.jsonl", sink);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->plain_text);
  EXPECT_EQ(r->prompt, "Q?");
  // Named: the same as the conversational form of the example.
  const TemplateChoice named = choose_template("llama3", nullptr);
  auto t = render_example(ex, named, "f.jsonl", sink);
  RawExample chat = ex;
  chat.format = Format::conversational;
  chat.prompt_chat = {{"user", "Q?"}};
  chat.response_chats = {{{"assistant", "A"}}, {{"assistant", "B"}}};
  auto c = render_example(chat, named, "f.jsonl", sink);
  ASSERT_TRUE(t && c);
  EXPECT_FALSE(t->plain_text);
  EXPECT_EQ(t->prompt, c->prompt);
  EXPECT_EQ(t->responses, c->responses);
  EXPECT_TRUE(problems.empty());
}

TEST(RenderExample, ConversationsWithoutATemplateFailNamingTheLine) {
  RawExample chat;
  chat.line = 12;
  chat.format = Format::conversational;
  chat.prompt_chat = {{"user", "Q?"}};
  chat.response_chats = {{{"assistant", "A"}}, {{"assistant", "B"}}};
  std::vector<Problem> problems;
  ProblemSink sink(12, problems);
  try {
    render_example(chat, choose_template("auto", nullptr), "f.jsonl", sink);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f.jsonl:12"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--chat-template"), std::string::npos) << e.what();
  }
  // A conversation the template rejects is a problem of that example only.
  chat.prompt_chat = {{"system", "s"}, {"user", "Q?"}};
  EXPECT_FALSE(render_example(chat, choose_template("mistral", nullptr), "f.jsonl", sink));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].kind, problem::unsupported);
  EXPECT_EQ(problems[0].line, 12);
}

}  // namespace
}  // namespace duet::data
