// A checkpoint whose chat template is not the stock one is prompted with its own: `qwen3vl run --verbose-prompt` on a
// test-time copy of tiny-realtok-bf16 that ships InternVL3's template (Qwen2.5-Instruct's, with a default system
// prompt; scripts/reference/templates/internvl3_qwen2_5.jinja), the same template given with --chat-template-file to
// the stock checkpoint, and a broken template file refused with its name and line.
#include <gtest/gtest.h>

#include "test_util.h"

namespace qwen3vl {
namespace {

using testing::run_cli;

const char* const kDefaultSystemPrompt =
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n";

std::string internvl3_template() { return testing::reference_template("internvl3_qwen2_5.jinja"); }

TEST(ChatTemplateCli, CheckpointIsPromptedWithItsOwnTemplate) {
  testing::TempDir dir;
  const std::string model = testing::checkpoint_with_chat_template(dir, "model", internvl3_template());
  const auto result = run_cli("run -m " + model + " -p hello --temp 0 -n 1 --verbose-prompt");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find(std::string(kDefaultSystemPrompt) + "\nprompt ids:"), std::string::npos)
      << result.output;
  // The stock checkpoint adds no system message.
  const auto stock = run_cli("run -m " + testing::model_fixture("tiny-realtok-bf16") +
                             " -p hello --temp 0 -n 1 --verbose-prompt");
  ASSERT_EQ(stock.exit_code, 0) << stock.output;
  EXPECT_EQ(stock.output.find("<|im_start|>system"), std::string::npos) << stock.output;
}

TEST(ChatTemplateCli, ChatTemplateFileOverridesTheCheckpoints) {
  testing::TempDir dir;
  const std::string file = dir.file("custom.jinja");
  testing::write_file(file, internvl3_template());
  const auto result = run_cli("run -m " + testing::model_fixture("tiny-realtok-bf16") +
                              " -p hello --temp 0 -n 1 --verbose-prompt --chat-template-file " + file);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find(kDefaultSystemPrompt), std::string::npos) << result.output;
}

TEST(ChatTemplateCli, BrokenTemplateIsRefusedWithFileAndLine) {
  testing::TempDir dir;
  const std::string file = dir.file("broken.jinja");
  testing::write_file(file, "{% for message in messages %}\n{{ message.content }}\n{% include 'other.jinja' %}\n");
  const auto result = run_cli("run -m " + testing::model_fixture("tiny-realtok-bf16") +
                              " -p hello -n 1 --chat-template-file " + file);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("error: " + file + ": chat template line 3: the 'include' tag is not supported"),
            std::string::npos)
      << result.output;
  // The checkpoint's own template is checked the same way, at load.
  const std::string model = testing::checkpoint_with_chat_template(dir, "model", "ok\n{{ x|no_such_filter }}");
  const auto own = run_cli("run -m " + model + " -p hello -n 1");
  EXPECT_EQ(own.exit_code, 1);
  EXPECT_NE(own.output.find(model + "/chat_template.json: chat template line 2: No filter named 'no_such_filter'."),
            std::string::npos)
      << own.output;
}

}  // namespace
}  // namespace qwen3vl
