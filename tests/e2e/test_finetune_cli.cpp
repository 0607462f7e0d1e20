// `qwen3vl finetune` end to end on tiny-realtok-bf16 (a real tokenizer) with the mixed dataset of
// tests/fixtures/train/data (text, images, a video, both record formats): LoRA runs write a PEFT adapter that
// `run --lora` loads, a log line per step and resumable checkpoints; a run resumed from its step-2 checkpoint and a
// second run with the same seed end with byte-identical adapters; a --tune-mm-mlp run writes a checkpoint that
// `run` loads and a further run trains on (keeping its own log); a bad record stops the run naming its file and
// line, or is skipped on request.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace qwen3vl {
namespace {

using testing::run_cli;
using testing::TempDir;

std::string model() { return testing::model_fixture("tiny-realtok-bf16"); }

std::string base_args(const std::string& data, const std::string& out, const std::string& from = model()) {
  return "finetune -m " + from + " --data " + data + " --media-root " + testing::fixtures_dir() + " -o " + out +
         " --max-pixels 65536 --video-max-pixels 131072 --video-max-frames 4 --lr 1e-3 -t 2 ";
}

std::string dataset() { return testing::fixtures_dir() + "/train/data/sft_mixed.jsonl"; }

std::string lora_args(const std::string& out) {
  return base_args(dataset(), out) + "--lora-target all-linear --lora-r 4 --lora-alpha 8 --max-steps 4 ";
}

TEST(FinetuneCli, LoraRunWritesAnAdapterThatRunLoads) {
  TempDir dir;
  const std::string out = dir.file("lora");
  const auto result = run_cli(lora_args(out) + "--save-steps 2");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("step 4/4"), std::string::npos) << result.output;
  for (const char* file : {"adapter_config.json", "adapter_model.safetensors", "checkpoint-2/adapter_model.safetensors",
                           "checkpoint-2/train_state.safetensors", "checkpoint-4/run.json"})
    EXPECT_TRUE(std::filesystem::exists(out + "/" + file)) << file;
  std::ifstream log(out + "/train_log.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(log, line)) {
    const auto entry = nlohmann::json::parse(line);
    EXPECT_EQ(entry["step"].get<int>(), ++lines);
    EXPECT_TRUE(std::isfinite(entry["loss"].get<double>())) << line;
    EXPECT_GT(entry["tokens"].get<int>(), 0) << line;
  }
  EXPECT_EQ(lines, 4);
  const auto run = run_cli("run -m " + model() + " -p hi -n 3 --temp 0 --lora " + out);
  EXPECT_EQ(run.exit_code, 0) << run.output;
}

TEST(FinetuneCli, ResumedAndRepeatedRunsEndBitIdentical) {
  TempDir dir;
  const std::string straight = dir.file("straight"), saved = dir.file("saved"), resumed = dir.file("resumed");
  ASSERT_EQ(run_cli(lora_args(straight)).exit_code, 0);
  ASSERT_EQ(run_cli(lora_args(saved) + "--save-steps 2").exit_code, 0);
  const auto result = run_cli(lora_args(resumed) + "--resume " + saved + "/checkpoint-2");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("at step 2"), std::string::npos) << result.output;
  const std::string adapter = "/adapter_model.safetensors";
  const std::string reference = testing::read_file(straight + adapter);
  EXPECT_EQ(testing::read_file(saved + adapter), reference) << "two runs with the same seed";
  EXPECT_EQ(testing::read_file(resumed + adapter), reference) << "2 steps, resume, 2 steps";
}

TEST(FinetuneCli, MergerOnlyRunWritesACheckpointRunLoads) {
  TempDir dir;
  const std::string out = dir.file("full");
  const auto result = run_cli(base_args(dataset(), out) + "--tune-mm-mlp --max-steps 2");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(std::filesystem::exists(out + "/config.json"));
  const auto run = run_cli("run -m " + out + " -p hi -n 3 --temp 0");
  EXPECT_EQ(run.exit_code, 0) << run.output;

  // Training on from that output: the new folder holds the new run's log, not the old run's.
  const std::string next = dir.file("next");
  const auto again = run_cli(base_args(dataset(), next, out) + "--tune-mm-mlp --max-steps 1");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  std::ifstream log(next + "/train_log.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(log, line)) ++lines;
  EXPECT_EQ(lines, 1);
  EXPECT_FALSE(std::filesystem::exists(next + "/run.json"));
}

TEST(FinetuneCli, BadRecordStopsWithItsLineOrIsSkipped) {
  TempDir dir;
  const std::string data = dir.file("data.jsonl");
  {
    std::ofstream out(data);
    out << R"({"conversations": [{"from": "human", "value": "Hi."}, {"from": "gpt", "value": "Hello."}]})" << "\n";
    out << R"({"conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "A."}]})"
        << "\n";
  }
  const std::string args = base_args(data, dir.file("out")) + "--lora-target q_proj --max-steps 1 ";
  const auto stopped = run_cli(args);
  EXPECT_EQ(stopped.exit_code, 1);
  EXPECT_NE(stopped.output.find("data.jsonl:2"), std::string::npos) << stopped.output;
  const auto skipped = run_cli(args + "--skip-bad-samples");
  EXPECT_EQ(skipped.exit_code, 0) << skipped.output;
  EXPECT_NE(skipped.output.find("skipped"), std::string::npos) << skipped.output;
}

}  // namespace
}  // namespace qwen3vl
