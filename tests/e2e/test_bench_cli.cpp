// `qwen3vl bench` on a tiny checkpoint: the report has every test and figure, in JSON and markdown alike. Timings
// are never checked, only that they are there; the counts must equal engine/bench_metrics.h's.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/bench_metrics.h"
#include "engine/loaded_model.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

using nlohmann::json;
using testing::run_cli;

const char* kArgs = " -t 1 -r 2 --warmup 0 -p 8 -n 4 --image 64x64 --video-seconds 2 --video-size 64x48 "
                    "--bandwidth-mib 16";

TEST(BenchCli, JsonHasEveryTestAndFigure) {
  const std::string model = testing::model_fixture("tiny-bf16-untied");
  const auto result = run_cli("bench --json -m " + model + kArgs, /*with_stderr=*/false);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const json j = json::parse(result.output);
  EXPECT_EQ(j["threads"], 1);
  EXPECT_EQ(j["repetitions"], 2);
  EXPECT_GT(j["peak_rss_bytes"].get<double>(), 0.0);
  EXPECT_GT(j["memory_bandwidth_gb_per_s"].get<double>(), 0.0);
  EXPECT_TRUE(j.contains("peak_gflops"));
  EXPECT_TRUE(j.contains("peak_kind"));
  ASSERT_EQ(j["tests"].size(), 5u);

  LoadOptions options;
  options.require_tokenizer = false;
  options.threads = 1;
  const auto loaded = load_model(model, options);
  const json& pp = j["tests"][0];
  EXPECT_EQ(pp["test"], "pp8");
  EXPECT_EQ(pp["unit"], "tok/s");
  EXPECT_EQ(pp["values"].size(), 2u);
  EXPECT_DOUBLE_EQ(pp["flops"].get<double>(), text_forward_flops(loaded->config, 8));
  EXPECT_TRUE(pp.contains("gflops_per_s"));
  EXPECT_TRUE(pp.contains("peak_fraction"));

  const json& tg = j["tests"][1];
  EXPECT_EQ(tg["test"], "tg4");
  EXPECT_DOUBLE_EQ(tg["weight_bytes_per_token"].get<double>(),
                   decode_weight_bytes(loaded->config, loaded->text_weights));
  EXPECT_TRUE(tg.contains("weight_read_gb_per_s"));
  EXPECT_TRUE(tg.contains("bandwidth_fraction"));
  EXPECT_FALSE(tg.contains("sampler_fraction"));

  // Sampled with the checkpoint's generation_config (none set here: transformers' defaults, top_k 50).
  const json& sampled = j["tests"][2];
  EXPECT_EQ(sampled["test"], "tg4 sampled");
  EXPECT_EQ(sampled["values"].size(), 2u);
  EXPECT_EQ(sampled["weight_bytes_per_token"], tg["weight_bytes_per_token"]);
  EXPECT_GT(sampled["sampler_ms_per_token"].get<double>(), 0.0);
  EXPECT_GT(sampled["sampler_fraction"].get<double>(), 0.0);
  EXPECT_LT(sampled["sampler_fraction"].get<double>(), 1.0);
  EXPECT_NE(sampled["detail"].get<std::string>().find("top_k 50, top_p 1"), std::string::npos) << sampled["detail"];

  const json& img = j["tests"][3];
  EXPECT_EQ(img["test"], "img64x64");
  EXPECT_EQ(img["unit"], "s");
  // The tiny checkpoint has no preprocessor config: the class defaults (min_pixels 65536) scale 64x64 up to 256x256.
  EXPECT_EQ(img["grid"], json({1, 16, 16}));
  EXPECT_EQ(img["visual_tokens"], 64);
  EXPECT_DOUBLE_EQ(img["flops"].get<double>(), vision_forward_flops(loaded->config, {GridTHW{1, 16, 16}}));

  const json& video = j["tests"][4];
  EXPECT_EQ(video["test"], "video2s");
  const json& clip = j["video"];
  EXPECT_EQ(clip["frames"], 48);         // 2 s at 24 fps
  EXPECT_EQ(clip["frames_sampled"], 4);  // fps 2 -> 4 frames (also the minimum)
  const GridTHW grid{clip["grid"][0].get<int64_t>(), clip["grid"][1].get<int64_t>(), clip["grid"][2].get<int64_t>()};
  EXPECT_EQ(grid.t, 2);  // 4 frames -> 2 frame pairs
  EXPECT_EQ(video["grid"], clip["grid"]);
  EXPECT_EQ(video["visual_tokens"], grid.merged_tokens(2));
  EXPECT_EQ(clip["visual_tokens"], grid.merged_tokens(2));
  EXPECT_DOUBLE_EQ(video["flops"].get<double>(), vision_forward_flops(loaded->config, {grid}));
}

TEST(BenchCli, MarkdownHasTheSameTests) {
  const auto result = run_cli("bench -m " + testing::model_fixture("tiny-bf16-untied") + kArgs);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  for (const char* needle : {"| pp8 |", "| tg4 |", "| tg4 sampled |", "% of decode", "| img64x64 |", "| video2s |", "GFLOP/s", "GB weights/token",
                             "visual tokens", "peak resident memory", "streaming read"})
    EXPECT_NE(result.output.find(needle), std::string::npos) << needle << "\n" << result.output;
}

TEST(BenchCli, ImageFilesAreTimedUnderTheirOwnSize) {
  testing::TempDir dir;
  testing::write_file(dir.file("a.bmp"), testing::bmp_bytes(96, 64));
  const auto result = run_cli("bench --json -t 1 -r 1 --warmup 0 -p 0 -n 0 --video-seconds 0 --bandwidth-mib 0 "
                              "-m " + testing::model_fixture("tiny-bf16-untied") + " --image " + dir.file("a.bmp"),
                              /*with_stderr=*/false);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const json j = json::parse(result.output);
  ASSERT_EQ(j["tests"].size(), 1u);
  EXPECT_EQ(j["tests"][0]["test"], "img96x64");
  const json& grid = j["tests"][0]["grid"];
  EXPECT_EQ(j["tests"][0]["visual_tokens"],
            grid[0].get<int64_t>() * grid[1].get<int64_t>() * grid[2].get<int64_t>() / 4);
  EXPECT_FALSE(j.contains("video"));
}

}  // namespace
}  // namespace qwen3vl
