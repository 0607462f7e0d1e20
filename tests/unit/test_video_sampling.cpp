// Frame sampling, timestamps and the video resize rule: the arithmetic of transformers' Qwen3VLVideoProcessor /
// Qwen3VLProcessor and qwen-vl-utils 0.0.14 (vision_process.py fetch_video), on numbers worked out by hand from them.
#include <gtest/gtest.h>

#include <cstdlib>

#include "engine/video_prompt.h"
#include "core/error.h"
#include "test_util.h"
#include "vision/video_processor.h"
#include "vision/video_sampling.h"

namespace qwen3vl {
namespace {

SampledFrames sample(int64_t total, std::optional<double> fps, FrameSamplingOptions options = {}) {
  return sample_frames(total, fps, options, FrameSamplingDefaults{}, "clip.mp4");
}

TEST(VideoSampling, TransformersDefaultIsTwoFramesPerSecond) {
  // 10 s at 30 fps: int(300 / 30 * 2) = 20 frames, numpy linspace(0, 299, 20) rounded half to even.
  const SampledFrames s = sample(300, 30.0);
  ASSERT_EQ(s.indices.size(), 20u);
  EXPECT_EQ(s.indices.front(), 0);
  EXPECT_EQ(s.indices[1], 16);  // 15.736... -> 16
  EXPECT_EQ(s.indices.back(), 299);
  EXPECT_EQ(s.fps, 30.0);
}

TEST(VideoSampling, TransformersClampsToMinAndMaxAndFrameCount) {
  EXPECT_EQ(sample(30, 30.0).indices.size(), 4u);           // 1 s -> 2, raised to min_frames 4
  EXPECT_EQ(sample(3, 30.0).indices.size(), 3u);            // never more than the video has
  EXPECT_EQ(sample(36000, 30.0).indices.size(), 768u);      // 20 min -> 2400, capped at 768
  FrameSamplingOptions o;
  o.num_frames = 7;                                         // used as given (odd: padded later)
  EXPECT_EQ(sample(250, 25.0, o).indices, (std::vector<int64_t>{0, 42, 83, 124, 166, 208, 249}));
  o = {};
  o.max_frames = 6;
  EXPECT_EQ(sample(1200, 30.0, o).indices, (std::vector<int64_t>{0, 240, 480, 719, 959, 1199}));
}

TEST(VideoSampling, MissingFpsFallsBackTo24) {
  const SampledFrames s = sample(48, std::nullopt);
  EXPECT_TRUE(s.fps_was_missing);
  EXPECT_EQ(s.fps, 24.0);
  EXPECT_EQ(s.indices.size(), 4u);  // int(48 / 24 * 2) = 4
}

TEST(VideoSampling, QwenVlUtilsFloorsToAnEvenCountWithFloat32Linspace) {
  FrameSamplingOptions o;
  o.rule = FrameSamplingRule::QwenVlUtils;
  o.num_frames = 9;  // round_by_factor(9, 2) = round(4.5) * 2 = 8
  EXPECT_EQ(sample(210, 30000.0 / 1001, o).indices, (std::vector<int64_t>{0, 30, 60, 90, 119, 149, 179, 209}));
  o = {};
  o.rule = FrameSamplingRule::QwenVlUtils;
  o.start_seconds = 2.5;  // frames ceil(62.5) = 63 .. floor(177.5) = 177: 115 frames -> 8
  o.end_seconds = 7.1;
  const SampledFrames s = sample(250, 25.0, o);
  EXPECT_EQ(s.indices, (std::vector<int64_t>{63, 79, 96, 112, 128, 144, 161, 177}));
  EXPECT_EQ(s.total_frames, 115);
  o.end_seconds = 2.0;
  EXPECT_THROW(sample(250, 25.0, o), Error);
}

TEST(VideoSampling, LinspacesMatchNumpyAndTorch) {
  EXPECT_EQ(numpy_linspace(0, 71, 6), (std::vector<double>{0, 14.2, 28.4, 42.599999999999994, 56.8, 71}));
  const std::vector<float> t = torch_linspace_f32(0, 9, 4);
  EXPECT_EQ(t, (std::vector<float>{0.f, 3.f, 6.f, 9.f}));
  EXPECT_EQ(round_half_even(2.5), 2.0);
  EXPECT_EQ(round_half_even(3.5), 4.0);
}

TEST(VideoSampling, StampsAreTheMeanOfEachFramePairPrintedLikePython) {
  // Frames 0 and 14 of a 24 fps video: (0 + 0.58333) / 2 = 0.2917 -> "0.3".
  EXPECT_EQ(frame_group_timestamps({0.0, 14 / 24.0}, 2), (std::vector<double>{(0.0 + 14 / 24.0) / 2}));
  EXPECT_EQ(timestamp_text((0.0 + 14 / 24.0) / 2), "<0.3 seconds>");
  EXPECT_EQ(timestamp_text(0.25), "<0.2 seconds>");  // ties of exact binary halves go to even, as Python
  EXPECT_EQ(timestamp_text(0.75), "<0.8 seconds>");
  EXPECT_EQ(timestamp_text(10.0), "<10.0 seconds>");
  // An odd count repeats the last frame: (2.0 + 2.0) / 2.
  EXPECT_EQ(frame_group_timestamps({0.0, 0.5, 1.0, 1.5, 2.0}, 2), (std::vector<double>{0.25, 1.25, 2.0}));
}

TEST(VideoResize, BudgetIsOverAllFrames) {
  // video_processing_qwen3_vl.py smart_resize, released budget: 20 frames of 1280x720 -> 704x1280; 768 -> 128x224.
  EXPECT_EQ(smart_resize_video(20, 720, 1280, 2, 32, 4096, 25165824), (std::pair<int64_t, int64_t>{704, 1280}));
  EXPECT_EQ(smart_resize_video(768, 720, 1280, 2, 32, 4096, 25165824), (std::pair<int64_t, int64_t>{128, 224}));
  EXPECT_EQ(smart_resize_video(6, 20, 60, 2, 32, 4096, 25165824).first % 32, 0);  // small frames scale up first
  EXPECT_THROW(smart_resize_video(1, 720, 1280, 2, 32, 4096, 25165824), Error);
}

TEST(VideoResize, PerFrameCapAndQwenVlUtilsBudgets) {
  VideoProcessorConfig config;
  config.min_pixels = 4096;
  config.max_pixels = 25165824;
  VideoOptions options;
  options.cap_pixels_per_frame = true;  // per frame min(768 * 32 * 32, budget / T)
  EXPECT_EQ(video_target_size(20, 720, 1280, config, options), (std::pair<int64_t, int64_t>{640, 1152}));
  VideoOptions qvu;
  qvu.sampling.rule = FrameSamplingRule::QwenVlUtils;  // fetch_video: 20 frames of 1280x720 -> 640x1152
  EXPECT_EQ(video_target_size(20, 720, 1280, config, qvu), (std::pair<int64_t, int64_t>{640, 1152}));
}

// qwen-vl-utils takes its default total budget from MODEL_SEQ_LEN (int(float(...)) of the variable); values
// Python refuses are refused by name, and no value can overflow an integer conversion.
TEST(VideoResize, ModelSeqLenIsParsedLikeQwenVlUtils) {
  VideoProcessorConfig config;
  VideoOptions qvu;
  qvu.sampling.rule = FrameSamplingRule::QwenVlUtils;
  const auto released = video_target_size(20, 720, 1280, config, qvu);
  setenv("MODEL_SEQ_LEN", "1000.9", 1);  // int(float("1000.9")) = 1000 tokens: the 1.05 x min_pixels floor wins
  const auto small = video_target_size(20, 720, 1280, config, qvu);
  EXPECT_LT(small.first * small.second, released.first * released.second);
  EXPECT_LE(small.first * small.second, 137625);
  setenv("MODEL_SEQ_LEN", "1e300", 1);  // finite: as large as Python's int, capped by the per-frame maximum
  EXPECT_EQ(video_target_size(20, 720, 1280, config, qvu), released);
  for (const char* bad : {"nan", "inf", "1e400", "lots", ""}) {
    setenv("MODEL_SEQ_LEN", bad, 1);
    try {
      video_target_size(20, 720, 1280, config, qvu);
      ADD_FAILURE() << "MODEL_SEQ_LEN=" << bad << " was accepted";
    } catch (const Error& error) {
      EXPECT_EQ(std::string(error.what()).rfind("MODEL_SEQ_LEN: ", 0), 0u) << error.what();
    }
  }
  unsetenv("MODEL_SEQ_LEN");
}

// A native frame rate so small that the wanted count exceeds any int64 still samples every frame (no overflowing
// float-to-integer conversion).
TEST(VideoSampling, TinyNativeFpsTakesEveryFrame) {
  const SampledFrames s = sample(100, 1e-300);
  EXPECT_EQ(s.indices.size(), 100u);
  EXPECT_EQ(s.indices.back(), 99);
}

TEST(VideoProcessorConfig, FollowsTransformersFilePrecedence) {
  testing::TempDir dir;
  EXPECT_EQ(load_video_processor_config(dir.path()).max_pixels, 768 * 32 * 32);  // class defaults
  testing::write_file(dir.file("preprocessor_config.json"), R"({"size": {"shortest_edge": 100, "longest_edge": 200}})");
  EXPECT_EQ(load_video_processor_config(dir.path()).max_pixels, 200);
  testing::write_file(dir.file("video_preprocessor_config.json"),
                      R"({"size": {"shortest_edge": 4096, "longest_edge": 25165824}, "fps": 1, "max_frames": 64})");
  const VideoProcessorConfig config = load_video_processor_config(dir.path());
  EXPECT_EQ(config.max_pixels, 25165824);
  EXPECT_EQ(config.sampling.fps, 1.0);
  EXPECT_EQ(config.sampling.max_frames, 64);
  testing::write_file(dir.file("video_preprocessor_config.json"), R"({"fps": "fast"})");
  EXPECT_THROW(load_video_processor_config(dir.path()), Error);
}

TEST(VideoPrompt, EachFramePairGetsItsStampAndItsPads) {
  ProcessedVideo video;
  video.grid = GridTHW{2, 4, 6};
  video.frame_times = {0.0, 0.5, 1.0};  // 3 frames: the last pair repeats frame 2
  const std::string expansion = video_placeholder_text(video, 2);
  std::string pads;
  for (int k = 0; k < 6; ++k) pads += "<|video_pad|>";
  EXPECT_EQ(expansion, "<0.2 seconds><|vision_start|>" + pads + "<|vision_end|><1.0 seconds><|vision_start|>" + pads +
                           "<|vision_end|>");
  const std::string text = "a<|vision_start|><|video_pad|><|vision_end|>b";
  EXPECT_EQ(expand_video_placeholders(text, {video}, 2), "a<|vision_start|>" + expansion + "<|vision_end|>b");
  EXPECT_EQ(expand_video_placeholders(text, {video}, 2, 2, VideoPlaceholderStyle::Transformers4),
            "a" + expansion + "b");
  EXPECT_THROW(expand_video_placeholders(text, {}, 2), Error);
  EXPECT_THROW(expand_video_placeholders(text, {video, video}, 2), Error);
}

}  // namespace
}  // namespace qwen3vl
