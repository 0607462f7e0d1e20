// `qwen3vl eval` end to end on the trained demo model (models/qwen3vl-tiny-shapes) and a tiny JSONL with a malformed
// line and a missing image: both reported per item, the run goes on; --resume continues from a torn predictions file.
#include <gtest/gtest.h>

#include <sstream>

#include "test_util.h"

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

TEST(CliEval, MissingDataFileIsAnError) {
  const auto r = run_cli("eval -m " + model_dir() + " --data /nonexistent/x.jsonl");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("error: /nonexistent/x.jsonl: cannot open the benchmark file"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace qwen3vl
