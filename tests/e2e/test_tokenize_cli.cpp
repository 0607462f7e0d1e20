// `qwen3vl tokenize`: ids against the HF tokenizer goldens (a text given as a file, as an argument, on stdin; with
// and without parse_special), llama-tokenize's piece lines, --messages against the engine's chat prompt, and the
// one-line errors.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "engine/prompt.h"
#include "engine/tokenize.h"
#include "test_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer_goldens.h"
#include "vision/image_decode.h"

namespace qwen3vl {
namespace {

using nlohmann::json;
using testing::run_cli;
using testing::TempDir;

const std::string kModel = testing::model_fixture("tiny-realtok-bf16");

// The ids of "[ID, ...]" on the first line of the output.
std::vector<int32_t> ids_of(const testing::CommandResult& result) {
  EXPECT_EQ(result.exit_code, 0) << result.output;
  const json list = json::parse(result.output.substr(0, result.output.find('\n')), nullptr, false);
  EXPECT_TRUE(list.is_array()) << result.output;
  return list.is_array() ? list.get<std::vector<int32_t>>() : std::vector<int32_t>{};
}

TEST(TokenizeCli, IdsOnlyMatchTheHfGoldensOfEveryCategory) {
  TempDir dir;
  std::map<std::string, size_t> first_of;  // one string per category, raw bytes (invalid UTF-8 included) in a file
  const auto& goldens = testing::tokenizer_goldens();
  for (size_t i = 0; i < goldens.size(); ++i) first_of.emplace(goldens[i].cat, i);
  ASSERT_GE(first_of.size(), 30u);
  for (const auto& [cat, index] : first_of) {
    testing::write_file(dir.file("text"), goldens[index].input);
    EXPECT_EQ(ids_of(run_cli("tokenize -m " + kModel + " --ids-only --file " + dir.file("text"), false)),
              goldens[index].ids)
        << cat << " golden " << index;
  }
  const auto& split = testing::split_special_goldens();
  const size_t special = split.begin()->first;
  testing::write_file(dir.file("special"), goldens[special].input);
  EXPECT_EQ(ids_of(run_cli("tokenize -m " + kModel + " --ids-only --no-parse-special -f " + dir.file("special"),
                           false)),
            split.begin()->second);
  EXPECT_EQ(ids_of(run_cli("tokenize -m " + kModel + " --ids-only --add-special -f " + dir.file("special"), false)),
            goldens[special].ids);
  EXPECT_EQ(ids_of(testing::run_command("cat " + dir.file("special") + " | " + testing::cli_path() + " tokenize -m " +
                                        kModel + " --ids-only - 2>/dev/null")),
            goldens[special].ids);
}

TEST(TokenizeCli, PrintsPiecesLikeLlamaTokenize) {
  const auto result = run_cli("tokenize -m " + kModel + " 'Hi <|im_start|>'\"$(printf '\\360\\237\\246\\234')\"");
  EXPECT_EQ(result.exit_code, 0);
  // U+1F99C is split between two tokens, neither valid UTF-8 alone: shown as their bytes.
  EXPECT_EQ(result.output,
            " 13048 -> 'Hi'\n"
            "   220 -> ' '\n"
            "151644 -> '<|im_start|>'\n"
            "123918 -> '<f0 9f a6>'\n"
            "   250 -> '<9c>'\n"
            "tokens: 5\n");
}

TEST(TokenizeCli, MessagesGiveTheEnginesChatPromptWithItsVisualTokens) {
  TempDir dir;
  const std::string image = testing::fixtures_dir() + "/multimodal/images/shapes_150x97.png";
  const json messages = json::array(
      {{{"role", "system"}, {"content", "Be brief."}},
       {{"role", "user"},
        {"content", json::array({{{"type", "image_url"}, {"image_url", {{"url", "file://" + image}}}},
                                 {{"type", "text"}, {"text", "What is this?"}}})}}});
  testing::write_file(dir.file("chat.json"), messages.dump());
  const auto result = run_cli("tokenize -m " + kModel + " --ids-only --messages " + dir.file("chat.json"));

  LoadOptions options;
  options.threads = 1;
  const auto model = load_model(kModel, options);
  const ProcessedImage processed = preprocess_image(decode_image_file(image), model->image_processor);
  const ChatTokens expected = tokenize_chat(*model, parse_chat_messages(messages.dump()), {processed});
  ASSERT_GT(expected.image_tokens, 0);
  EXPECT_EQ(ids_of(result), expected.ids);
  EXPECT_NE(result.output.find("\ntokens: " + std::to_string(expected.ids.size()) + ", visual tokens: " +
                               std::to_string(expected.image_tokens) + " (" +
                               std::to_string(expected.image_tokens) + " image, 0 video)\n"),
            std::string::npos)
      << result.output;
  // A chat request object works as well as the bare messages, whatever model it names.
  testing::write_file(dir.file("request.json"), json{{"model", "other"}, {"messages", messages}}.dump());
  EXPECT_EQ(ids_of(run_cli("tokenize -m " + kModel + " --ids-only --messages " + dir.file("request.json"), false)),
            expected.ids);
}

TEST(TokenizeCli, MistakesAreOneErrorLine) {
  TempDir dir;
  const auto expect_error = [](const std::string& arguments, const std::string& message) {
    const auto result = run_cli("tokenize " + arguments);
    EXPECT_EQ(result.exit_code, 1) << arguments;
    EXPECT_EQ(result.output.rfind("error: ", 0), 0u) << result.output;
    EXPECT_NE(result.output.find(message), std::string::npos) << result.output;
  };
  expect_error("-m " + kModel, "give a TEXT");
  expect_error("-m " + kModel + " -f " + dir.file("absent.txt"), dir.file("absent.txt") + ": cannot read");
  expect_error("-m " + dir.path() + " hi", "config.json");
  testing::write_file(dir.file("chat.json"), R"([{"role": "user", "content": 5}])");
  expect_error("-m " + kModel + " --messages " + dir.file("chat.json"),
               dir.file("chat.json") + ": messages[0].content: expected a string or an array");
  testing::write_file(dir.file("image.json"),
                      R"([{"role": "user", "content": [{"type": "image_url", "image_url": "file:///no/such.png"}]}])");
  expect_error("-m " + kModel + " --messages " + dir.file("image.json"), "messages[0].content[0]");
  expect_error("-m " + kModel + " --no-parse-special --messages " + dir.file("chat.json"), "always parsed");
}

}  // namespace
}  // namespace qwen3vl
