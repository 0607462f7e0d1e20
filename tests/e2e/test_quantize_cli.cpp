// `qwen3vl quantize` then `qwen3vl run` on its output gives the same greedy reply as `run --weight-format` (load-time
// conversion), for both formats; `kld` reports on the converted weights.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace qwen3vl {
namespace {

using testing::run_cli;

TEST(QuantizeCli, StoredCheckpointRunsLikeLoadTimeConversion) {
  const std::string model = testing::model_fixture("tiny-realtok-bf16");
  for (const char* format : {"q8", "q4"}) {
    SCOPED_TRACE(format);
    testing::TempDir tmp;
    const std::string out = tmp.file("out");
    const auto quantize =
        run_cli("quantize -m " + model + " -o " + out + " --format " + format + " --vision-format q8");
    ASSERT_EQ(quantize.exit_code, 0) << quantize.output;
    EXPECT_NE(quantize.output.find("done"), std::string::npos) << quantize.output;
    EXPECT_TRUE(std::filesystem::exists(out + "/tokenizer.json"));
    const std::string args = " -p 'Say something.' -n 12 --temp 0";
    const auto stored = run_cli("run -m " + out + args, /*with_stderr=*/false);
    const auto converted =
        run_cli("run -m " + model + " --weight-format " + format + " --vision-format q8" + args, false);
    ASSERT_EQ(stored.exit_code, 0) << stored.output;
    ASSERT_EQ(converted.exit_code, 0) << converted.output;
    EXPECT_EQ(stored.output, converted.output);
    // Writing over an existing directory is refused.
    const auto again = run_cli("quantize -m " + model + " -o " + out + " --format " + format);
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_NE(again.output.find("already exists"), std::string::npos) << again.output;
  }
}

TEST(QuantizeCli, KldPrintsPerPositionAndSummary) {
  const auto result = run_cli("kld --json -m " + testing::model_fixture("tiny-realtok-bf16") +
                                  " --weight-format q8 -p 'The quick brown fox jumps over the lazy dog.' --tokens 8",
                              false);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const nlohmann::json j = nlohmann::json::parse(result.output);
  EXPECT_EQ(j["positions"].get<int64_t>(), 8);
  EXPECT_EQ(j["kl"].size(), 8u);
  EXPECT_GE(j["mean_kl"].get<double>(), 0.0);
  EXPECT_LE(j["mean_kl"].get<double>(), j["max_kl"].get<double>());
  const auto missing = run_cli("kld -m " + testing::model_fixture("tiny-realtok-bf16") + " -p hi");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("--weight-format"), std::string::npos) << missing.output;
}

}  // namespace
}  // namespace qwen3vl
