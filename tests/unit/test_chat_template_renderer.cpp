// A checkpoint's chat template: the stock Qwen3-VL texts the fast path recognises, the fast path and the interpreter
// agreeing on every committed conversation, the Thinking probe, and the files and order transformers reads a
// template and its special tokens from (engine/chat_template_files.h).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/chat_template_files.h"
#include "test_util.h"
#include "tokenizer/chat_template_renderer.h"
#include "tokenizer/stock_chat_templates.h"

namespace qwen3vl {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::reference_template;
using testing::write_file;

TEST(ChatTemplateRenderer, StockTextsAreTheReleasedTemplates) {
  EXPECT_EQ(stock_chat_template(ChatTemplateKind::Instruct), reference_template("qwen3vl_instruct.jinja"));
  EXPECT_EQ(stock_chat_template(ChatTemplateKind::Thinking), reference_template("qwen3vl_thinking.jinja"));
  std::string without_newline = reference_template("qwen3vl_thinking.jinja");
  without_newline.pop_back();
  EXPECT_EQ(stock_chat_template_kind(without_newline), ChatTemplateKind::Thinking);
  EXPECT_EQ(stock_chat_template_kind(reference_template("qwen3vl_instruct.jinja") + " "), std::nullopt);

  const ChatTemplateRenderer stock(reference_template("qwen3vl_instruct.jinja"), "t", {});
  EXPECT_FALSE(stock.interpreted());
  const ChatTemplateRenderer other(reference_template("qwen2_5_vl.jinja"), "t", {});
  EXPECT_TRUE(other.interpreted());
}

// Every conversation of tests/fixtures/chat/conversations.json, parsed as the engine parses client messages, renders
// the same through the hand-written renderer and through the interpreter running the same template (a trailing
// comment keeps it from being recognised as stock). The fast path's own goldens (expected.json) then prove both.
TEST(ChatTemplateRenderer, FastPathAndInterpreterAgreeOnEveryConversation) {
  const auto conversations = nlohmann::json::parse(testing::read_file(testing::fixtures_dir() + "/chat/conversations.json"));
  int compared = 0;
  for (const auto& conversation : conversations) {
    SCOPED_TRACE(conversation["name"].get<std::string>());
    std::vector<ChatMessage> messages;
    try {
      messages = parse_chat_messages(conversation["messages"].dump());
    } catch (const Error&) {
      continue;  // refused before any template (tests/unit/test_chat_template.cpp)
    }
    const std::string kind = conversation["template"];
    const std::string text = reference_template("qwen3vl_" + kind + ".jinja");
    const ChatTemplateRenderer fast(text, "stock", {});
    const ChatTemplateRenderer interpreted(text + "{# interpreted #}", "copy", {});
    ASSERT_FALSE(fast.interpreted());
    ASSERT_TRUE(interpreted.interpreted());
    ChatTemplateOptions options;
    options.add_generation_prompt = conversation["add_generation_prompt"];
    options.add_vision_id = conversation["add_vision_id"];
    if (conversation.contains("tools"))
      for (const auto& tool : conversation["tools"]) options.tools_json.push_back(tool.dump());
    std::string expected;
    try {
      expected = fast.render(messages, options);
    } catch (const Error&) {
      EXPECT_THROW(interpreted.render(messages, options), Error);
      continue;
    }
    EXPECT_EQ(interpreted.render(messages, options), expected);
    ++compared;
  }
  EXPECT_GT(compared, 45);
}

TEST(ChatTemplateRenderer, ThinkingIsWhereTheGenerationPromptOpensThink) {
  EXPECT_EQ(ChatTemplateRenderer(reference_template("qwen3vl_thinking.jinja") + "{# copy #}", "t", {}).kind(),
            ChatTemplateKind::Thinking);
  EXPECT_EQ(ChatTemplateRenderer(reference_template("qwen3vl_instruct.jinja") + "{# copy #}", "t", {}).kind(),
            ChatTemplateKind::Instruct);
  // Qwen3's text template thinks too, but its prompt does not pre-fill <think>.
  EXPECT_EQ(ChatTemplateRenderer(reference_template("qwen3_text.jinja"), "t", {}).kind(), ChatTemplateKind::Instruct);
  // A template that refuses the one-turn probe is not taken for a Thinking one.
  EXPECT_EQ(ChatTemplateRenderer("{{ raise_exception('needs a system message') }}", "t", {}).kind(),
            ChatTemplateKind::Instruct);
}

TEST(ChatTemplateRenderer, MessagesReachTheTemplateInOneShape) {
  const auto messages = parse_chat_messages(R"([
    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x.png"}}, {"text": "hi"}]},
    {"role": "assistant", "content": null, "reasoning": "r",
     "tool_calls": [{"id": "call_1", "function": {"name": "f", "arguments": "{\"a\": 1}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "ok"}])");
  std::string shape;
  for (const auto& message : chat_messages_json(messages)) shape += chat_json::dumps(message) + "\n";
  EXPECT_EQ(shape,
            "{\"role\": \"user\", \"content\": [{\"type\": \"image\"}, {\"type\": \"text\", \"text\": \"hi\"}]}\n"
            "{\"role\": \"assistant\", \"tool_calls\": [{\"id\": \"call_1\", \"type\": \"function\", \"function\": "
            "{\"name\": \"f\", \"arguments\": {\"a\": 1}}}], \"reasoning_content\": \"r\"}\n"
            "{\"role\": \"tool\", \"content\": \"ok\", \"tool_call_id\": \"call_1\"}\n");
  // Special tokens and add_vision_id reach the template as transformers passes them.
  const ChatTemplateRenderer renderer("{{ bos_token }}|{{ eos_token }}|{{ add_vision_id }}|{{ messages[1].thinking }}",
                                      "t", {{"bos_token", "<s>"}, {"eos_token", "</s>"}});
  ChatTemplateOptions options;
  options.add_vision_id = true;
  EXPECT_EQ(renderer.render(messages, options), "<s>|</s>|True|r");
}

TEST(ChatTemplateRenderer, ErrorsNameTheTemplateSource) {
  try {
    ChatTemplateRenderer("a\n{% if %}", "custom.jinja", {});
    ADD_FAILURE() << "parsed";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("custom.jinja: chat template line 2: ", 0), 0u) << e.what();
  }
  const ChatTemplateRenderer raising("\n{{ raise_exception('no ' ~ messages[0].role) }}", "custom.jinja", {});
  const auto messages = parse_chat_messages(R"([{"role": "user", "content": "x"}])");
  try {
    raising.render(messages, {});
    ADD_FAILURE() << "rendered";
  } catch (const ChatTemplateRaised& e) {
    EXPECT_EQ(std::string(e.what()), "custom.jinja: chat template line 2: no user");
    EXPECT_EQ(e.template_message(), "no user");
  }
}

// ---- which file a checkpoint's template comes from ----

std::string found(const std::string& dir) {
  const auto text = find_chat_template(dir);
  return text ? text->text + " @ " + fs::path(text->source).filename().string() : "none";
}

TEST(ChatTemplateFiles, FollowTransformersProcessorPrecedence) {
  TempDir dir;
  EXPECT_EQ(found(dir.path()), "none");
  write_file(dir.file("tokenizer_config.json"), R"({"chat_template": "T"})");
  EXPECT_EQ(found(dir.path()), "T @ tokenizer_config.json chat_template");
  write_file(dir.file("chat_template.jinja"), "J");
  EXPECT_EQ(found(dir.path()), "J @ chat_template.jinja");
  // The legacy chat_template.json wins over chat_template.jinja in ProcessorMixin.from_pretrained.
  write_file(dir.file("chat_template.json"), R"({"chat_template": "L"})");
  EXPECT_EQ(found(dir.path()), "L @ chat_template.json");
  write_file(dir.file("processor_config.json"), R"({"chat_template": "P", "image_processor": {}})");
  EXPECT_EQ(found(dir.path()), "P @ processor_config.json chat_template");
  write_file(dir.file("processor_config.json"), R"({"chat_template": null})");
  EXPECT_EQ(found(dir.path()), "L @ chat_template.json");
  // A legacy file beside named templates is refused, as transformers refuses it.
  fs::create_directories(dir.file("chat_templates"));
  write_file(dir.file("chat_templates/tool_use.jinja"), "U");
  EXPECT_THROW(find_chat_template(dir.path()), Error);
  fs::remove(dir.file("chat_template.json"));
  EXPECT_EQ(found(dir.path()), "J @ chat_template.jinja");
  fs::remove(dir.file("chat_template.jinja"));
  try {
    find_chat_template(dir.path());
    ADD_FAILURE() << "no default template, yet one was chosen";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("none named \"default\""), std::string::npos) << e.what();
  }
  write_file(dir.file("chat_templates/default.jinja"), "D");
  EXPECT_EQ(found(dir.path()), "D @ default.jinja");
}

TEST(ChatTemplateFiles, NamedTemplatesInTokenizerConfig) {
  TempDir dir;
  write_file(dir.file("tokenizer_config.json"),
             R"({"chat_template": [{"name": "tool_use", "template": "U"}, {"name": "default", "template": "D"}]})");
  EXPECT_EQ(found(dir.path()), "D @ tokenizer_config.json chat_template");
  write_file(dir.file("tokenizer_config.json"), R"({"chat_template": [{"name": "rag", "template": "R"}]})");
  EXPECT_THROW(find_chat_template(dir.path()), Error);
  write_file(dir.file("tokenizer_config.json"), R"({"chat_template": 7})");
  EXPECT_THROW(find_chat_template(dir.path()), Error);
}

TEST(ChatTemplateFiles, SpecialTokensAsTransformersMapsThem) {
  TempDir dir;
  write_file(dir.file("tokenizer_config.json"),
             R"({"bos_token": null, "eos_token": "<|im_end|>", "unk_token": {"content": "<unk>", "lstrip": false},
                 "additional_special_tokens": ["<x>"]})");
  write_file(dir.file("special_tokens_map.json"), R"({"pad_token": "<pad>", "eos_token": "ignored"})");
  const SpecialTokens expected = {{"eos_token", "<|im_end|>"}, {"unk_token", "<unk>"}, {"pad_token", "<pad>"}};
  EXPECT_EQ(read_special_tokens(dir.path()), expected);
}

TEST(ChatTemplateFiles, OverrideFileReplacesTheCheckpointsTemplate) {
  TempDir dir;
  write_file(dir.file("chat_template.jinja"), "checkpoint");
  write_file(dir.file("override.jinja"), "override {{ eos_token }}");
  write_file(dir.file("tokenizer_config.json"), R"({"eos_token": "<e>"})");
  const auto messages = parse_chat_messages(R"([{"role": "user", "content": "x"}])");
  EXPECT_EQ(load_chat_template(dir.path()).render(messages, {}), "checkpoint");
  EXPECT_EQ(load_chat_template(dir.path(), dir.file("override.jinja")).render(messages, {}), "override <e>");
  EXPECT_THROW(load_chat_template(dir.path(), dir.file("missing.jinja")), Error);
  EXPECT_EQ(load_chat_template(TempDir().path()).source(), "the stock Qwen3-VL Instruct template");
}

}  // namespace
}  // namespace qwen3vl
