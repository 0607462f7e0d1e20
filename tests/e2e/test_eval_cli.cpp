// `qwen3vl eval` end to end on the trained demo model (models/qwen3vl-tiny-shapes) and a tiny JSONL with a malformed
// line and a missing image: both reported per item, the run goes on; --resume continues from a torn predictions file.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/safetensors.h"
#include "test_util.h"
#include "unit/kernel_test_util.h"

namespace qwen3vl {
namespace {

using testing::run_cli;
using testing::TempDir;

std::string repo_dir() { return testing::fixtures_dir() + "/../.."; }
std::string model_dir() { return repo_dir() + "/models/qwen3vl-tiny-shapes"; }
std::string mini() { return testing::fixtures_dir() + "/eval/mini/mini.jsonl"; }

int count_lines(const std::string& text) {
  int n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

TEST(CliEval, ScoresReportsBadItemsAndCarriesOn) {
  TempDir dir;
  const std::string pred = dir.file("pred.jsonl");
  const auto r = run_cli("eval -m " + model_dir() + " --data " + mini() + " --predictions " + pred);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("item at line 4: skipped: not valid JSON"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("item missing (line 5): skipped: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no_such_image.png: image file not found"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[7/7] 100.0%"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("overall         5"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 item(s) could not be run"), std::string::npos) << r.output;
  // the trained model gets these four right (shape, colour, count, box)
  EXPECT_NE(r.output.find("shape           1   100.00%"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("grounding       1   100.00%"), std::string::npos) << r.output;
  const std::string p = testing::read_file(pred);
  EXPECT_EQ(count_lines(p), 5) << p;
  EXPECT_NE(p.find(R"("id":"color")"), std::string::npos);
  EXPECT_NE(p.find(R"("prediction":"blue")"), std::string::npos) << p;
  EXPECT_NE(p.find(R"("extracted":)"), std::string::npos) << p;
}

TEST(CliEval, ResumeRunsOnlyTheRest) {
  TempDir dir;
  const std::string pred = dir.file("pred.jsonl");
  const auto full = run_cli("eval -m " + model_dir() + " --data " + mini() + " --predictions " + pred,
                            false);
  ASSERT_EQ(full.exit_code, 0) << full.output;
  // keep two finished items and a torn third line, as an interrupted run leaves them
  std::istringstream in(testing::read_file(pred));
  std::string l1, l2, l3;
  std::getline(in, l1);
  std::getline(in, l2);
  std::getline(in, l3);
  testing::write_file(pred, l1 + "\n" + l2 + "\n" + l3.substr(0, l3.size() / 2));
  const auto resumed =
      run_cli("eval -m " + model_dir() + " --data " + mini() + " --predictions " + pred + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resume: 2 item(s) already in"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("5 to run"), std::string::npos) << resumed.output;  // 3 items + 2 bad ones
  EXPECT_EQ(count_lines(testing::read_file(pred)), 5);
  // same table as the uninterrupted run
  const auto table = [](const std::string& out) { return out.substr(out.find("category")); };
  EXPECT_EQ(table(resumed.output), table(full.output));
}

TEST(CliEval, VideoItemsGoThroughTheVideoPath) {
  TempDir dir;
  const std::string pred = dir.file("pred.jsonl");
  const std::string data = testing::fixtures_dir() + "/eval/mini/video.jsonl";
  const auto r = run_cli("eval -m " + model_dir() + " --data " + data + " --predictions " + pred);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("item missing (line 2): skipped: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no_such_video.mp4: video file not found"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("item at line 3: skipped: \"fps\" must be a positive number"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("[4/4] 100.0%"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("overall            2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 item(s) could not be run"), std::string::npos) << r.output;
  const std::string p = testing::read_file(pred);
  EXPECT_EQ(count_lines(p), 2) << p;
  // the reply equals `qwen3vl run --video` greedy on the same clip and question (sampling at the checkpoint's
  // 2 fps, <t.t seconds> stamps per frame pair)
  const std::string run = "run -m " + model_dir() + " --video " + testing::fixtures_dir() +
                          "/eval/synthetic/videos/v000.mp4 -p \"At what second does the orange square appear?\" "
                          "--temp 0 -n 64";
  const auto stamps = run_cli(run);
  ASSERT_EQ(stamps.exit_code, 0) << stamps.output;
  EXPECT_NE(stamps.output.find("<3.5 seconds>"), std::string::npos) << stamps.output;
  const std::string reply = run_cli(run, false).output;  // stdout: the reply and a newline
  std::istringstream in(p);
  std::string first;
  std::getline(in, first);
  ASSERT_NE(first.find(R"("id":"appear")"), std::string::npos) << first;
  const auto json_string = [](std::string text) {
    for (size_t k = 0; (k = text.find('"', k)) != std::string::npos; k += 2) text.insert(k, "\\");
    return text;
  };
  const std::string expected = reply.substr(0, reply.find_last_not_of('\n') + 1);
  EXPECT_NE(first.find(R"("prediction":")" + json_string(expected) + R"(")"), std::string::npos)
      << first << "\n" << reply;
}

// LoRA r=4 on every decoder layer's q_proj (128 -> 128) of the demo model, large enough to change its answers.
std::string write_demo_adapter(const TempDir& dir) {
  const std::string folder = dir.file("adapter");
  std::filesystem::create_directories(folder);
  testing::write_file(folder + "/adapter_config.json",
                      nlohmann::json{{"peft_type", "LORA"}, {"r", 4}, {"lora_alpha", 8}}.dump());
  std::vector<std::vector<float>> values;
  std::vector<TensorToWrite> tensors;
  uint32_t seed = 1;
  for (int layer = 0; layer < 4; ++layer) {
    const std::string path =
        "base_model.model.model.language_model.layers." + std::to_string(layer) + ".self_attn.q_proj";
    values.push_back(testing::random_floats(4 * 128, seed++, 0.5f));
    tensors.push_back({path + ".lora_A.weight", "F32", {4, 128}, values.back().data(), values.back().size() * 4});
    values.push_back(testing::random_floats(128 * 4, seed++, 0.5f));
    tensors.push_back({path + ".lora_B.weight", "F32", {128, 4}, values.back().data(), values.back().size() * 4});
  }
  write_safetensors(folder + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
  return folder;
}

// --lora as `run` takes it: the adapter changes the predictions, and at scale 0 they are the base model's.
TEST(CliEval, LoraAdapterIsApplied) {
  TempDir dir;
  const std::string adapter = write_demo_adapter(dir);
  const auto predictions = [&](const std::string& name, const std::string& extra) {
    const std::string pred = dir.file(name);
    const auto r = run_cli("eval -m " + model_dir() + " --data " + mini() + " --predictions " + pred + extra);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return testing::read_file(pred);
  };
  const std::string base = predictions("base.jsonl", "");
  EXPECT_EQ(predictions("zero.jsonl", " --lora " + adapter + ":0"), base);
  EXPECT_NE(predictions("lora.jsonl", " --lora " + adapter), base);
}

TEST(CliEval, MissingDataFileIsAnError) {
  const auto r = run_cli("eval -m " + model_dir() + " --data /nonexistent/x.jsonl");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("error: /nonexistent/x.jsonl: cannot open the benchmark file"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace qwen3vl
