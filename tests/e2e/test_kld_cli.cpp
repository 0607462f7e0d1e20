// `qwen3vl kld --save-logits / --base-logits`: a run compared with its own saved logits gives KL 0 and full
// agreement; converted weights against saved shipped logits give what the two-model comparison gives; a file of
// another vocabulary, a malformed file or a missing text is refused with one line. With --image: transformers'
// logits of an image prompt (the multimodal goldens) are matched, and a text's <|image_pad|> is expanded.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include <algorithm>

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

TEST(KldCli, ImagePromptMatchesTransformersLogits) {
  // transformers' fp32 logits of a one-image prompt on tiny-fp32-tied, written as a logits file.
  const std::string dir = testing::fixtures_dir() + "/multimodal";
  const nlohmann::json index = nlohmann::json::parse(testing::read_file(dir + "/tiny-fp32-tied/index.json"));
  const nlohmann::json& one = index["cases"][0];
  ASSERT_EQ(one["name"], "one_image");
  LogitsFile transformers;
  transformers.ids = one["input_ids"].get<std::vector<int32_t>>();
  transformers.vocab = one["logits"]["shape"][1].get<int64_t>();
  transformers.rows = testing::read_f32(dir + "/" + one["logits"]["file"].get<std::string>());
  testing::TempDir tmp;
  const std::string base = tmp.file("transformers.logits");
  write_logits_file(base, transformers);

  const std::string image = dir + "/images/" + one["images"][0].get<std::string>();
  const auto result = run_cli("kld --json -m " + testing::model_fixture("tiny-fp32-tied") + " --base-logits " + base +
                                  " --image " + image,
                              false);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const nlohmann::json report = nlohmann::json::parse(result.output);
  EXPECT_EQ(report["positions"], transformers.ids.size());
  EXPECT_LT(report["max_kl"].get<double>(), 1e-9);  // fp32 both sides: the golden tests' 1e-4 logit tolerance
  EXPECT_EQ(report["top1_agreement"].get<double>(), 1.0);

  const auto without_image = run_cli("kld -m " + testing::model_fixture("tiny-fp32-tied") + " --base-logits " + base);
  EXPECT_EQ(without_image.exit_code, 1);
  EXPECT_NE(without_image.output.find("the tokens hold 15 <|image_pad|> tokens, but no image was given"),
            std::string::npos)
      << without_image.output;
}

TEST(KldCli, ImagePlaceholderOfATextIsExpanded) {
  testing::TempDir tmp;
  const std::string saved = tmp.file("ours.logits");
  const std::string model = testing::model_fixture("tiny-realtok-bf16");
  const std::string image = testing::fixtures_dir() + "/multimodal/images/shapes_150x97.png";
  const std::string text = " -p '<|vision_start|><|image_pad|><|vision_end|>What is drawn here?'";
  const auto save = run_cli("kld -m " + model + text + " --image " + image + " --save-logits " + saved);
  ASSERT_EQ(save.exit_code, 0) << save.output;
  const LogitsFile file = read_logits_file(saved);
  const int64_t pads = std::count(file.ids.begin(), file.ids.end(), 151655);
  EXPECT_GT(pads, 1);
  const auto first_pad = std::find(file.ids.begin(), file.ids.end(), 151655);
  ASSERT_NE(first_pad, file.ids.begin());
  EXPECT_EQ(*(first_pad - 1), 151652);  // <|vision_start|>, then the run, then <|vision_end|>
  EXPECT_EQ(*(first_pad + pads), 151653);
  EXPECT_NE(save.output.find(std::to_string(pads) + " visual tokens"), std::string::npos) << save.output;

  const nlohmann::json same = kld_json(" --base-logits " + saved + " --image " + image);
  EXPECT_EQ(same["mean_kl"].get<double>(), 0.0);
  EXPECT_EQ(same["top1_agreement"].get<double>(), 1.0);

  const auto too_short = run_cli("kld -m " + model + text + " --image " + image + " --save-logits " + saved +
                                 " --tokens 4");
  EXPECT_EQ(too_short.exit_code, 1);
  EXPECT_NE(too_short.output.find("over --tokens 4"), std::string::npos) << too_short.output;
}

}  // namespace
}  // namespace qwen3vl
