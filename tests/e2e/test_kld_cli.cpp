// `qwen3vl kld --save-logits / --base-logits`: a run compared with its own saved logits gives KL 0 and full
// agreement; converted weights against saved shipped logits give what the two-model comparison gives; a file of
// another vocabulary, a malformed file or a missing text is refused with one line.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/logits_file.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

using testing::run_cli;

const std::string kText = " -p 'The quick brown fox jumps over the lazy dog.' --tokens 8";

nlohmann::json kld_json(const std::string& args) {
  const auto result = run_cli("kld --json -m " + testing::model_fixture("tiny-realtok-bf16") + args, false);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return result.exit_code == 0 ? nlohmann::json::parse(result.output) : nlohmann::json();
}

TEST(KldCli, SavedLogitsAgainstTheSameRunGiveZeroDivergence) {
  testing::TempDir tmp;
  const std::string saved = tmp.file("ours.logits");
  const auto save = run_cli("kld -m " + testing::model_fixture("tiny-realtok-bf16") + kText + " --save-logits " + saved);
  ASSERT_EQ(save.exit_code, 0) << save.output;
  const LogitsFile file = read_logits_file(saved);
  EXPECT_EQ(file.positions(), 8);
  const nlohmann::json same = kld_json(" --base-logits " + saved);
  EXPECT_EQ(same["positions"], 8);
  EXPECT_EQ(same["mean_kl"].get<double>(), 0.0);
  EXPECT_EQ(same["max_kl"].get<double>(), 0.0);
  EXPECT_EQ(same["top1_agreement"].get<double>(), 1.0);
}

TEST(KldCli, ConvertedWeightsAgainstSavedLogitsMatchTheTwoModelComparison) {
  testing::TempDir tmp;
  const std::string saved = tmp.file("shipped.logits");
  const auto save = run_cli("kld -m " + testing::model_fixture("tiny-realtok-bf16") + kText + " --save-logits " + saved);
  ASSERT_EQ(save.exit_code, 0) << save.output;
  const nlohmann::json direct = kld_json(kText + " --weight-format q8");
  const nlohmann::json from_file = kld_json(" --weight-format q8 --base-logits " + saved);
  EXPECT_GT(direct["mean_kl"].get<double>(), 0.0);
  EXPECT_EQ(from_file["kl"], direct["kl"]);
  EXPECT_EQ(from_file["top1_converted"], direct["top1_converted"]);
  EXPECT_EQ(from_file["base"], saved);
}

TEST(KldCli, MismatchedOrMalformedFilesAreRefused) {
  testing::TempDir tmp;
  LogitsFile other_vocab;
  other_vocab.vocab = 7;
  other_vocab.ids = {1, 2};
  other_vocab.rows.assign(14, 0.5f);
  const std::string wrong = tmp.file("wrong.logits");
  write_logits_file(wrong, other_vocab);
  const std::string model = testing::model_fixture("tiny-realtok-bf16");
  const auto mismatched = run_cli("kld -m " + model + " --base-logits " + wrong);
  EXPECT_EQ(mismatched.exit_code, 1);
  EXPECT_NE(mismatched.output.find(wrong + ": rows of 7 logits, but"), std::string::npos) << mismatched.output;
  EXPECT_NE(mismatched.output.find("vocab_size"), std::string::npos) << mismatched.output;

  const std::string junk = tmp.file("junk.logits");
  std::ofstream(junk) << "not logits at all, just text";
  const auto malformed = run_cli("kld -m " + model + " --base-logits " + junk);
  EXPECT_EQ(malformed.exit_code, 1);
  EXPECT_NE(malformed.output.find(junk + ": not a logits file"), std::string::npos) << malformed.output;

  const auto both = run_cli("kld -m " + model + kText + " --base-logits " + junk);
  EXPECT_NE(both.exit_code, 0);
  const auto nothing = run_cli("kld -m " + model + " -p hi");
  EXPECT_EQ(nothing.exit_code, 1);
  EXPECT_NE(nothing.output.find("--base-logits"), std::string::npos) << nothing.output;
}

}  // namespace
}  // namespace qwen3vl
