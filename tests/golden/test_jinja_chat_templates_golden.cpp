// Real chat templates through the Jinja interpreter: every (template, conversation) pair of
// tests/fixtures/chat/template_goldens.json must render byte-identical to transformers' apply_chat_template
// (scripts/reference/make_template_goldens.py, on scripts/reference/templates/*.jinja and
// tests/fixtures/chat/conversations.json). Where transformers failed, the interpreter must fail too: with the
// template's own message for raise_exception, with jinja2's wording for the Python errors, and before rendering
// for the inputs transformers refuses up front (an empty conversation, a tool that is not an object).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "tokenizer/chat_template_json.h"
#include "tokenizer/jinja_render.h"
#include "tokenizer/jinja_template.h"

namespace qwen3vl::testing {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

const std::string kChatDir = std::string(QWEN3VL_FIXTURES_DIR) + "/chat";
const std::string kTemplateDir = std::string(QWEN3VL_FIXTURES_DIR) + "/../../scripts/reference/templates";

// The inputs of one conversation of conversations.json, as make_template_goldens.py passes them.
ChatTemplateInputs inputs_of(const chat_json::Value& conversation, const nlohmann::json& special_tokens) {
  ChatTemplateInputs inputs;
  inputs.messages = conversation.find("messages")->items;
  if (const chat_json::Value* tools = conversation.find("tools")) inputs.tools = *tools;
  inputs.add_generation_prompt = conversation.find("add_generation_prompt")->boolean;
  for (const auto& [name, value] : special_tokens.items())
    inputs.special_tokens.emplace_back(name, chat_json::parse(value.dump(), "special token"));
  inputs.extra.emplace_back("add_vision_id", *conversation.find("add_vision_id"));
  if (const chat_json::Value* kwargs = conversation.find("template_kwargs"))
    for (const auto& member : kwargs->members) inputs.extra.push_back(member);
  return inputs;
}

jinja::RenderOptions pinned_clock(const std::string& clock) {
  std::tm time{};
  EXPECT_EQ(std::sscanf(clock.c_str(), "%d-%d-%d %d:%d:%d", &time.tm_year, &time.tm_mon, &time.tm_mday, &time.tm_hour,
                        &time.tm_min, &time.tm_sec),
            6);
  time.tm_year -= 1900;
  time.tm_mon -= 1;
  std::mktime(&time);  // fills the weekday and day of the year that %a / %j print
  jinja::RenderOptions options;
  options.clock = time;
  return options;
}

// "source: chat template line N: message" -> message.
std::string message_of(const std::string& what) {
  const size_t at = what.find(": chat template line ");
  if (at == std::string::npos) return what;
  return what.substr(what.find(": ", at + 2) + 2);
}

TEST(JinjaChatTemplatesGolden, EveryTemplateAndConversationMatchesTransformers) {
  const nlohmann::json goldens = nlohmann::json::parse(read_text(kChatDir + "/template_goldens.json"));
  std::map<std::string, chat_json::Value> conversations;
  for (const chat_json::Value& c : chat_json::parse(read_text(kChatDir + "/conversations.json"), "conversations").items)
    conversations[c.find("name")->text] = c;
  const jinja::RenderOptions options = pinned_clock(goldens["clock"]);

  std::map<std::string, JinjaTemplate> templates;
  for (const auto& [name, sha] : goldens["template_sha256"].items()) {
    const std::string path = kTemplateDir + "/" + name + ".jinja";
    templates.emplace(name, JinjaTemplate::parse(read_text(path), path));
  }
  int texts = 0, raised = 0, failed = 0, refused = 0;
  for (const auto& golden : goldens["cases"]) {
    const std::string template_name = golden["template"], conversation = golden["conversation"];
    SCOPED_TRACE(template_name + " x " + conversation);
    ASSERT_TRUE(conversations.count(conversation));
    const JinjaTemplate& tpl = templates.at(template_name);
    const ChatTemplateInputs inputs = inputs_of(conversations[conversation], goldens["special_tokens"]);
    if (golden.contains("text")) {
      try {
        EXPECT_EQ(tpl.render(chat_template_variables(inputs), options), golden["text"].get<std::string>());
      } catch (const Error& e) {
        ADD_FAILURE() << e.what();
      }
      ++texts;
      continue;
    }
    const auto& error = golden["error"];
    if (error["before_render"]) {
      EXPECT_THROW(chat_template_variables(inputs), Error);
      ++refused;
      continue;
    }
    try {
      const std::string text = tpl.render(chat_template_variables(inputs), options);
      ADD_FAILURE() << "expected " << error["type"] << ": " << error["message"] << ", rendered " << text;
    } catch (const ChatTemplateRaised& e) {
      EXPECT_TRUE(error["raised"].get<bool>()) << e.what();
      EXPECT_EQ(e.template_message(), error["message"].get<std::string>());
      ++raised;
    } catch (const Error& e) {
      EXPECT_FALSE(error["raised"].get<bool>()) << e.what();
      EXPECT_EQ(message_of(e.what()), error["message"].get<std::string>()) << e.what();
      ++failed;
    }
  }
  // The set keeps its teeth: most pairs render, and each kind of failure is exercised.
  EXPECT_GT(texts, 150);
  EXPECT_GT(raised, 3);
  EXPECT_GT(failed, 20);
  EXPECT_GT(refused, 5);
}

// The stock Qwen3-VL templates in the interpreter and in the hand-written renderer of chat_template.cpp give the
// same text: the goldens above cover the interpreter, tests/unit/test_chat_template.cpp the renderer, both against
// transformers; this ties the template files both use to the hashes the goldens were made with.
TEST(JinjaChatTemplatesGolden, TemplateFilesAreTheOnesTheGoldensWereMadeWith) {
  const nlohmann::json goldens = nlohmann::json::parse(read_text(kChatDir + "/template_goldens.json"));
  const nlohmann::json expected = nlohmann::json::parse(read_text(kChatDir + "/expected.json"));
  for (const char* kind : {"instruct", "thinking"})
    EXPECT_EQ(goldens["template_sha256"][std::string("qwen3vl_") + kind], expected["template_sha256"][kind]) << kind;
}

}  // namespace
}  // namespace qwen3vl::testing
