// End-to-end runs of the qwen3vl CLI on the tiny real-tokenizer checkpoint, and every class of bad input:
// each must give a one-line error naming the file and tensor or field, and exit code 1, never a crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace qwen3vl {
namespace {

using testing::run_cli;
using testing::TempDir;

const char* kModel = "tiny-realtok-bf16";

std::string model_dir() { return testing::model_fixture(kModel); }

// A writable copy of the checkpoint that a test may damage.
std::string copy_model(const TempDir& dir) {
  const std::string copy = dir.file("model");
  testing::copy_dir(model_dir(), copy);
  return copy;
}

void expect_failure(const testing::CommandResult& result, std::initializer_list<std::string> needles) {
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_EQ(result.output.rfind("error: ", 0), 0u) << result.output;
  EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1) << "one line: " << result.output;
  for (const std::string& needle : needles)
    EXPECT_NE(result.output.find(needle), std::string::npos) << "missing '" << needle << "' in: " << result.output;
}

void edit_config(const std::string& dir, const std::function<void(nlohmann::ordered_json&)>& edit) {
  const std::string path = dir + "/config.json";
  auto config = nlohmann::ordered_json::parse(testing::read_file(path));
  edit(config);
  testing::write_file(path, config.dump(2));
}

TEST(Cli, HelpListsSubcommandsAndFlags) {
  const auto top = run_cli("--help");
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.output.find("run"), std::string::npos);
  const auto run = run_cli("run --help");
  EXPECT_EQ(run.exit_code, 0);
  for (const char* flag : {"--model", "--prompt", "--system", "--raw", "--temp", "--top-k", "--top-p", "--seed",
                           "--n-predict", "--stop"})
    EXPECT_NE(run.output.find(flag), std::string::npos) << flag;
}

TEST(Cli, GreedyRunMatchesTransformers) {
  const auto golden = nlohmann::json::parse(
      testing::read_file(testing::fixtures_dir() + "/goldens/" + kModel + "/index.json"))["cli_greedy"];
  const std::string prompt = golden["prompt"];
  const auto result = run_cli("run -m " + model_dir() + " -p '" + prompt + "' --temp 0 -n " +
                              std::to_string(golden["max_new_tokens"].get<int>()), /*with_stderr=*/false);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, golden["text"].get<std::string>() + "\n");
}

TEST(Cli, StopStringEndsTheReplyBeforeIt) {
  const auto golden = nlohmann::json::parse(
      testing::read_file(testing::fixtures_dir() + "/goldens/" + kModel + "/index.json"))["cli_greedy"];
  const std::string full = golden["text"];
  const size_t cut = full.find(" stint");
  ASSERT_NE(cut, std::string::npos);
  const std::string args = "run -m " + model_dir() + " -p '" + golden["prompt"].get<std::string>() +
                           "' --temp 0 -n 32 --stop ' stint'";
  EXPECT_EQ(run_cli(args, /*with_stderr=*/false).output, full.substr(0, cut) + "\n");
  EXPECT_NE(run_cli(args).output.find("finish: stop"), std::string::npos);
}

TEST(Cli, PrintsTimingLine) {
  const auto result = run_cli("run -m " + model_dir() + " -p hello --temp 0 -n 4");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("load "), std::string::npos);
  EXPECT_NE(result.output.find("| prompt "), std::string::npos);
  EXPECT_NE(result.output.find("tok/s | generated 4 tokens"), std::string::npos) << result.output;
}

TEST(Cli, SamplingWithASeedIsRepeatable) {
  const std::string args = "run -m " + model_dir() + " -p hello -n 12 --temp 0.9 --top-k 40 --seed 7";
  const auto first = run_cli(args, /*with_stderr=*/false);
  EXPECT_EQ(first.exit_code, 0);
  EXPECT_GT(first.output.size(), 1u);
  EXPECT_EQ(first.output, run_cli(args, false).output);
}

TEST(CliErrors, MissingModelDirectory) {
  expect_failure(run_cli("run -m /nonexistent/model -p hi"), {"/nonexistent/model/config.json", "cannot open"});
}

TEST(CliErrors, MissingPromptIsAUsageError) {
  const auto result = run_cli("run -m " + model_dir());
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("--prompt"), std::string::npos) << result.output;
}

TEST(CliErrors, TruncatedSafetensors) {
  TempDir dir;
  const std::string model = copy_model(dir);
  std::filesystem::resize_file(model + "/model.safetensors", 5000);
  expect_failure(run_cli("run -m " + model + " -p hi"), {"model.safetensors", "truncated"});
}

TEST(CliErrors, CorruptSafetensorsHeader) {
  TempDir dir;
  const std::string model = copy_model(dir);
  std::fstream file(model + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(8);
  file.write("#", 1);
  file.close();
  expect_failure(run_cli("run -m " + model + " -p hi"), {"model.safetensors", "corrupt safetensors header"});
}

TEST(CliErrors, UnknownDtype) {
  TempDir dir;
  const std::string model = copy_model(dir);
  std::string bytes = testing::read_file(model + "/model.safetensors");
  bytes.replace(bytes.find("\"BF16\""), 6, "\"BOOL\"");  // same length: offsets stay valid
  testing::write_file(model + "/model.safetensors", bytes);
  expect_failure(run_cli("run -m " + model + " -p hi"), {"model.safetensors", "unsupported dtype BOOL", "tensor "});
}

TEST(CliErrors, MissingTensor) {
  TempDir dir;
  const std::string model = copy_model(dir);
  edit_config(model, [](auto& config) { config["text_config"]["num_hidden_layers"] = 4; });
  expect_failure(run_cli("run -m " + model + " -p hi"),
                 {"model.safetensors", "missing tensor model.language_model.layers.3.input_layernorm.weight"});
}

TEST(CliErrors, WrongShape) {
  TempDir dir;
  const std::string model = copy_model(dir);
  edit_config(model, [](auto& config) { config["text_config"]["intermediate_size"] = 96; });
  expect_failure(run_cli("run -m " + model + " -p hi"),
                 {"model.safetensors", "tensor model.language_model.layers.0.mlp.gate_proj.weight", "[64, 32]",
                  "config.json implies [96, 32]"});
}

TEST(CliErrors, UnknownModelType) {
  TempDir dir;
  const std::string model = copy_model(dir);
  edit_config(model, [](auto& config) { config["model_type"] = "qwen2_vl"; });
  expect_failure(run_cli("run -m " + model + " -p hi"), {"config.json", "model_type \"qwen2_vl\""});
}

TEST(CliErrors, MissingConfigField) {
  TempDir dir;
  const std::string model = copy_model(dir);
  edit_config(model, [](auto& config) { config["text_config"].erase("hidden_size"); });
  expect_failure(run_cli("run -m " + model + " -p hi"), {"config.json", "text_config.hidden_size is missing"});
}

TEST(CliErrors, MissingTokenizer) {
  TempDir dir;
  const std::string model = copy_model(dir);
  std::filesystem::remove(model + "/tokenizer.json");
  expect_failure(run_cli("run -m " + model + " -p hi"), {"tokenizer.json", "missing"});
}

TEST(CliErrors, CorruptTokenizer) {
  TempDir dir;
  const std::string model = copy_model(dir);
  std::filesystem::remove(model + "/tokenizer.json");
  testing::write_file(model + "/tokenizer.json", "{\"model\": [");
  expect_failure(run_cli("run -m " + model + " -p hi"), {"tokenizer.json"});
}

}  // namespace
}  // namespace qwen3vl
