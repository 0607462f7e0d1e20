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

TEST(CliEval, MissingDataFileIsAnError) {
  const auto r = run_cli("eval -m " + model_dir() + " --data /nonexistent/x.jsonl");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("error: /nonexistent/x.jsonl: cannot open the benchmark file"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace qwen3vl
