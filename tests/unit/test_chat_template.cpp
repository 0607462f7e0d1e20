// Chat template: every conversation in tests/fixtures/chat/conversations.json must render byte-identical to the
// transformers output stored in expected.json (scripts/reference/make_chat_goldens.py), and the conversations
// transformers rejects must throw qwen3vl::Error. Plus direct checks of parsing and JSON printing.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/chat_template_json.h"

namespace qwen3vl {
namespace {

using chat_json::Value;

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::string kChatDir = std::string(QWEN3VL_FIXTURES_DIR) + "/chat";

const Value& member(const Value& object, const std::string& key) {
  const Value* v = object.find(key);
  if (!v) throw_error("fixture: missing key ", key);
  return *v;
}

struct Fixture {
  std::vector<Value> conversations;
  std::map<std::string, Value> expected;  // by name
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture out;
    out.conversations = chat_json::parse(read_text(kChatDir + "/conversations.json"), "conversations.json").items;
    const Value expected = chat_json::parse(read_text(kChatDir + "/expected.json"), "expected.json");
    for (const Value& c : member(expected, "cases").items) out.expected[member(c, "name").text] = c;
    return out;
  }();
  return f;
}

// Renders one fixture conversation through the public API: messages JSON -> parse_chat_messages -> apply.
std::string render(const Value& conv) {
  ChatTemplateOptions options;
  options.kind = member(conv, "template").text == "thinking" ? ChatTemplateKind::Thinking : ChatTemplateKind::Instruct;
  options.add_generation_prompt = member(conv, "add_generation_prompt").boolean;
  options.add_vision_id = member(conv, "add_vision_id").boolean;
  if (const Value* tools = conv.find("tools")) {
    for (const Value& tool : tools->items) options.tools_json.push_back(chat_json::dumps(tool));
  }
  return apply_chat_template(parse_chat_messages(chat_json::dumps(member(conv, "messages"))), options);
}

TEST(ChatTemplate, MatchesTransformersGoldens) {
  const Fixture& f = fixture();
  ASSERT_EQ(f.conversations.size(), f.expected.size());
  int rendered = 0;
  for (const Value& conv : f.conversations) {
    const std::string name = member(conv, "name").text;
    SCOPED_TRACE(name);
    if (conv.find("expect_error")) continue;
    const auto it = f.expected.find(name);
    ASSERT_NE(it, f.expected.end()) << "no golden for " << name;
    const Value* text = it->second.find("text");
    ASSERT_NE(text, nullptr);
    EXPECT_EQ(render(conv), text->text);
    ++rendered;
  }
  EXPECT_GE(rendered, 25);
}

TEST(ChatTemplate, RaisesWhereTransformersRaises) {
  int checked = 0;
  for (const Value& conv : fixture().conversations) {
    if (!conv.find("expect_error")) continue;
    const std::string name = member(conv, "name").text;
    SCOPED_TRACE(name);
    ASSERT_NE(fixture().expected.at(name).find("error"), nullptr) << "golden should record the Python error";
    EXPECT_THROW(render(conv), Error);
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

ChatMessage text_message(const std::string& role, const std::string& text) {
  ChatMessage m;
  m.role = role;
  m.content = {ContentPart{ContentPart::Type::Text, text}};
  return m;
}

template <typename F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected qwen3vl::Error";
  return "";
}

TEST(ChatTemplate, DirectMessagesSingleImageTurn) {
  ChatMessage user;
  user.role = "user";
  user.content_is_string = false;
  user.content = {ContentPart{ContentPart::Type::Image, ""},
                  ContentPart{ContentPart::Type::Text, "Describe this image."}};
  // The prompt transformers' apply_chat_template renders with the released Qwen3-VL Instruct template.
  EXPECT_EQ(apply_chat_template({user}, {}),
            "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe this image.<|im_end|>\n"
            "<|im_start|>assistant\n");
  ChatTemplateOptions thinking;
  thinking.kind = ChatTemplateKind::Thinking;
  EXPECT_EQ(apply_chat_template({user}, thinking),
            "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe this image.<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n");
}

TEST(ChatTemplate, ApplyErrorsNameTheField) {
  EXPECT_NE(error_message([] { apply_chat_template({}, {}); }).find("messages"), std::string::npos);

  ChatMessage bad = text_message("user", "x");
  bad.content.push_back(ContentPart{ContentPart::Type::Image, ""});  // images need a list content
  EXPECT_NE(error_message([&] { apply_chat_template({bad}, {}); }).find("messages[0].content"), std::string::npos);

  ChatMessage call = text_message("assistant", "");
  call.tool_calls = {ToolCall{"f", "{\"a\": 1", ""}};
  const std::string msg = error_message([&] { apply_chat_template({text_message("user", "q"), call}, {}); });
  EXPECT_NE(msg.find("messages[1].tool_calls[0].arguments"), std::string::npos) << msg;
  call.tool_calls = {ToolCall{"f", "", ""}};
  EXPECT_NE(error_message([&] { apply_chat_template({text_message("user", "q"), call}, {}); })
                .find("messages[1].tool_calls[0].arguments: missing"),
            std::string::npos);

  ChatTemplateOptions tools;
  tools.tools_json = {"{\"type\": \"function\"}", "[1, 2]"};
  EXPECT_NE(error_message([&] { apply_chat_template({text_message("user", "q")}, tools); }).find("tools[1]"),
            std::string::npos);
  tools.tools_json = {"{oops}"};
  EXPECT_NE(error_message([&] { apply_chat_template({text_message("user", "q")}, tools); }).find("tools[0]"),
            std::string::npos);
}

TEST(ChatTemplate, StringArgumentsArePrintedVerbatim) {
  // arguments_json holding a JSON string literal takes the template's `arguments is string` branch.
  ChatMessage call = text_message("assistant", "");
  call.tool_calls = {ToolCall{"f", "\"{'raw': 1}\"", ""}};
  EXPECT_EQ(apply_chat_template({text_message("user", "q"), call}, {}),
            "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": \"f\", \"arguments\": "
            "{'raw': 1}}\n</tool_call><|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, ParseMessages) {
  const auto messages = parse_chat_messages(R"([
    {"role": "system", "content": null},
    {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "u"}},
                                 {"type": "video_url", "video_url": {"url": "v"}},
                                 {"image": "x.png"}, {"video": "y.mp4"}]},
    {"role": "assistant", "content": "ok", "thinking": "why",
     "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{\"b\":2,\"a\":[1.50,1e400]}"}},
                    {"name": "g", "arguments": {"z": "\u00e9\ud83d\ude00"}}]}
  ])");
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_TRUE(messages[0].content_is_string);
  ASSERT_EQ(messages[0].content.size(), 1u);
  EXPECT_EQ(messages[0].content[0].text, "");
  EXPECT_FALSE(messages[1].content_is_string);
  ASSERT_EQ(messages[1].content.size(), 5u);
  EXPECT_EQ(messages[1].content[0].type, ContentPart::Type::Text);
  EXPECT_EQ(messages[1].content[1].type, ContentPart::Type::Image);
  EXPECT_EQ(messages[1].content[2].type, ContentPart::Type::Video);
  EXPECT_EQ(messages[1].content[3].type, ContentPart::Type::Image);
  EXPECT_EQ(messages[1].content[4].type, ContentPart::Type::Video);
  EXPECT_EQ(messages[2].reasoning_content, "why");
  ASSERT_EQ(messages[2].tool_calls.size(), 2u);
  EXPECT_EQ(messages[2].tool_calls[0].name, "f");
  EXPECT_EQ(messages[2].tool_calls[0].arguments_json, "{\"b\": 2, \"a\": [1.5, Infinity]}");
  EXPECT_EQ(messages[2].tool_calls[1].arguments_json, "{\"z\": \"\xC3\xA9\xF0\x9F\x98\x80\"}");
}

TEST(ChatTemplate, ParseErrorsNameTheField) {
  auto message_of = [](const std::string& json) { return error_message([&] { parse_chat_messages(json); }); };
  EXPECT_NE(message_of("[{\"role\": \"user\"").find("messages: invalid JSON"), std::string::npos);
  EXPECT_NE(message_of("{\"role\": \"user\"}").find("messages: expected a JSON array"), std::string::npos);
  EXPECT_NE(message_of("[42]").find("messages[0]: expected a message object"), std::string::npos);
  EXPECT_NE(message_of("[{\"content\": \"x\"}]").find("messages[0].role"), std::string::npos);
  EXPECT_NE(message_of("[{\"role\": \"user\", \"content\": 3}]").find("messages[0].content"), std::string::npos);
  const std::string audio =
      message_of(R"([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "audio", "audio": "x"}]}])");
  EXPECT_NE(audio.find("messages[0].content[1]: unsupported content part type 'audio'"), std::string::npos) << audio;
  EXPECT_NE(message_of(R"([{"role": "user", "content": [{"type": "text"}]}])").find("messages[0].content[0]"),
            std::string::npos);
  EXPECT_NE(message_of(R"([{"role": "user", "content": [{"type": "text", "text": 5}]}])")
                .find("messages[0].content[0].text"),
            std::string::npos);
  const std::string args = message_of(
      R"([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{not json"}}]}])");
  EXPECT_NE(args.find("messages[0].tool_calls[0].function.arguments: invalid JSON"), std::string::npos) << args;
  EXPECT_NE(message_of(R"([{"role": "assistant", "tool_calls": [{"function": {"arguments": {}}}]}])")
                .find("messages[0].tool_calls[0].function.name"),
            std::string::npos);
  EXPECT_NE(message_of(R"([{"role": "assistant", "content": "a", "reasoning_content": 1}])")
                .find("messages[0].reasoning_content"),
            std::string::npos);
  EXPECT_NE(message_of(R"([{"role": "user", "content": "\ud800"}])").find("surrogate"), std::string::npos);
}

TEST(ChatTemplateJson, PythonFloatRepr) {
  const std::vector<std::pair<double, std::string>> cases = {
      {0.0, "0.0"},        {-0.0, "-0.0"},     {1.0, "1.0"},         {0.1, "0.1"},
      {1.5, "1.5"},        {100.0, "100.0"},   {1e15, "1000000000000000.0"},
      {1e16, "1e+16"},     {1.25e16, "1.25e+16"}, {0.0001, "0.0001"}, {1e-05, "1e-05"},
      {2.5e-5, "2.5e-05"}, {123456.789, "123456.789"}, {1.7976931348623157e308, "1.7976931348623157e+308"},
      {5e-324, "5e-324"},  {-3.0e-7, "-3e-07"}, {1.0 / 3.0, "0.3333333333333333"}};
  for (const auto& [value, repr] : cases) EXPECT_EQ(chat_json::python_float_repr(value), repr) << repr;
}

TEST(ChatTemplateJson, DumpsLikePythonJson) {
  const Value v = chat_json::parse(
      R"({"b": [1, -0, 2.0, 1E2, 12345678901234567890123], "a": "q\"\\\/\b\f\n\r\t\u0001\u007f\u00e9", "b": {}})",
      "test");
  // Duplicate key: last value wins, first position kept (Python dict semantics).
  EXPECT_EQ(chat_json::dumps(v), "{\"b\": {}, \"a\": \"q\\\"\\\\/\\b\\f\\n\\r\\t\\u0001\x7f\xC3\xA9\"}");
  EXPECT_EQ(chat_json::dumps(chat_json::parse("[1, -0, 2.0, 1E2, 12345678901234567890123, []]", "t")),
            "[1, 0, 2.0, 100.0, 12345678901234567890123, []]");
  EXPECT_THROW(chat_json::parse("NaN", "t"), Error);
  EXPECT_THROW(chat_json::parse("[1,]", "t"), Error);
  EXPECT_THROW(chat_json::parse("01", "t"), Error);
  EXPECT_THROW(chat_json::parse("\"a\nb\"", "t"), Error);
  EXPECT_THROW(chat_json::parse("{} x", "t"), Error);
}

}  // namespace
}  // namespace qwen3vl
