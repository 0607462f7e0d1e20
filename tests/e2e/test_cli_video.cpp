// `qwen3vl run --video ...` end to end on the tiny real-tokenizer checkpoint: the frames sampled, their times, the
// stamps and the visual tokens printed per video; videos mixed with an image in command-line order; per-video
// overrides; a frame list; bad video input ending in one line that names the file, exit code 1.
#include <gtest/gtest.h>

#include "test_util.h"

namespace qwen3vl {
namespace {

using testing::run_cli;

std::string model_dir() { return testing::model_fixture("tiny-realtok-bf16"); }
std::string video(const std::string& name) { return testing::fixtures_dir() + "/videos/" + name; }

TEST(CliVideo, VideoImageVideoInOnePrompt) {
  const auto result = run_cli("run -m " + model_dir() + " --video " + video("cfr24_3s.mp4") + " --image " +
                              testing::fixtures_dir() + "/multimodal/images/shapes_70x50.png --video " +
                              video("ntsc2997_7s.mov") + "::fps=1 -p 'What changes?' --temp 0 -n 3 --verbose-prompt");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const std::string& out = result.output;
  EXPECT_NE(out.find("video 1: " + video("cfr24_3s.mp4") + " 96x64, 72 frames at 24 fps -> 6 frames sampled "
                     "[0 14 28 43 57 71] at [0.00 0.58 1.17 1.79 2.38 2.96] s, resized 128x96, grid 3x6x8, "
                     "36 visual tokens (12 per frame pair)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("  stamps: <0.3 seconds> <1.5 seconds> <2.7 seconds>"), std::string::npos) << out;
  // The checkpoint has no video_preprocessor_config.json: preprocessor_config.json's budget (at least 65536
  // pixels over all frames) scales 6 x 96x64 up to 128x96. fps=1 on the second video only: int(210 / 29.97) = 7.
  EXPECT_NE(out.find("video 2: " + video("ntsc2997_7s.mov") + " 96x64, 210 frames at 29.97 fps -> 7 frames sampled"),
            std::string::npos)
      << out;
  // The prompt: video, image, video, then the text; each pair stamped inside the template's vision_start/end.
  const size_t v1 = out.find("<|vision_start|><0.3 seconds><|vision_start|><|video_pad|>");
  const size_t img = out.find("<|image_pad|>");
  const size_t v2 = out.find("<|vision_start|><0.6 seconds><|vision_start|>");
  ASSERT_NE(v1, std::string::npos) << out;
  EXPECT_LT(v1, img);
  EXPECT_LT(img, v2);
  EXPECT_LT(v2, out.find("What changes?"));
}

TEST(CliVideo, FrameListWithExplicitTimes) {
  std::string frames;
  for (int i = 0; i < 5; ++i) frames += (i ? "," : "") + video("frames/frame" + std::to_string(i) + ".png");
  const auto result = run_cli("run -m " + model_dir() + " --video-frames " + frames +
                              "::times=0/0.4/1.1/2.05/3.3 -p 'Describe.' --temp 0 -n 2");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("stamps: <0.2 seconds> <1.6 seconds> <3.3 seconds>"), std::string::npos)
      << result.output;
}

TEST(CliVideo, BadVideosNameTheFile) {
  for (const std::string& path : {video("audio_only.mka"), video("zero_frames.y4m"), video("missing.mp4")}) {
    const auto result = run_cli("run -m " + model_dir() + " --video " + path + " -p hi -n 2");
    EXPECT_EQ(result.exit_code, 1) << result.output;
    EXPECT_NE(result.output.find("error: " + path + ": "), std::string::npos) << result.output;
  }
  const auto result = run_cli("run -m " + model_dir() + " --video " + video("cfr24_3s.mp4") + "::speed=2 -p hi");
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("unknown video option 'speed'"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace qwen3vl
