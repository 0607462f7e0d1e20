// `qwen3vl run` on a Thinking checkpoint: the reasoning goes to stderr, the answer to stdout, and
// --reasoning-format none prints the reply as generated. The checkpoint is a test-time copy of tiny-realtok-bf16
// whose chat template is the released Thinking one. Its random weights never emit </think>: that is the
// "never closes" case (the answer is empty, the reasoning is the whole reply); the unit tests cover the rest.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/reasoning.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

using testing::run_cli;

// DIR/model: tiny-realtok-bf16 with the released Thinking template.
std::string make_thinking_checkpoint(const testing::TempDir& dir) {
  return testing::checkpoint_with_chat_template(dir, "model", testing::reference_template("qwen3vl_thinking.jinja"));
}

TEST(ThinkingCli, PromptEndsInsideTheThinkBlock) {
  testing::TempDir dir;
  const std::string model = make_thinking_checkpoint(dir);
  const auto result = run_cli("run -m " + model + " -p hello --temp 0 -n 1 --verbose-prompt");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("<|im_start|>assistant\n<think>\n\nprompt ids:"), std::string::npos)
      << result.output;
  const auto info = nlohmann::json::parse(run_cli("info --json -m " + model, false).output);
  EXPECT_EQ(info["chat_template"], "Thinking");
}

TEST(ThinkingCli, ReasoningToStderrAnswerToStdout) {
  testing::TempDir dir;
  const std::string model = make_thinking_checkpoint(dir);
  const std::string args = "run -m " + model + " -p 'What is in the picture?' --temp 0 -n 24";
  const auto raw = run_cli(args + " --reasoning-format none", /*with_stderr=*/false);
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  ASSERT_FALSE(raw.output.empty());
  const std::string reply = raw.output.substr(0, raw.output.size() - 1);  // the CLI ends the reply with "\n"
  const ReasoningSplit expected = split_reasoning(reply);
  EXPECT_FALSE(expected.reasoning_finished) << "random weights closed </think>: " << reply;
  EXPECT_FALSE(expected.reasoning.empty());

  const auto answer_only = run_cli(args, /*with_stderr=*/false);
  ASSERT_EQ(answer_only.exit_code, 0);
  EXPECT_EQ(answer_only.output, expected.answer + "\n");  // never closed: empty answer

  const auto both = run_cli(args);
  ASSERT_EQ(both.exit_code, 0);
  EXPECT_NE(both.output.find(expected.reasoning), std::string::npos) << both.output;
  EXPECT_NE(both.output.find("note: the reply never closed </think>"), std::string::npos) << both.output;
  EXPECT_NE(both.output.find("finish: length"), std::string::npos) << both.output;
}

TEST(ThinkingCli, InstructCheckpointPrintsTheReplyAsBefore) {
  const std::string args = "run -m " + testing::model_fixture("tiny-realtok-bf16") + " -p hi --temp 0 -n 8";
  const auto plain = run_cli(args, false);
  EXPECT_EQ(plain.output, run_cli(args + " --reasoning-format none", false).output);
  EXPECT_EQ(run_cli(args).output.find("never closed"), std::string::npos);
}

TEST(ThinkingCli, RejectsAnUnknownReasoningFormat) {
  const auto result = run_cli("run -m " + testing::model_fixture("tiny-realtok-bf16") +
                              " -p hi --reasoning-format deepseek");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("reasoning-format"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace qwen3vl
