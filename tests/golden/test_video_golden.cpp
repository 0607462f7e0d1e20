// Video preprocessing and prompts against transformers 5.23 (goldens: scripts/reference/dump_video_goldens.py on the
// videos of scripts/reference/make_test_videos.sh). Per case, with the real Qwen3 tokenizer and chat template:
//   - the decoder's metadata (frame count, fps: torchcodec's packet scan, or PyAV's header) is identical,
//   - the sampled frame indices, the `<t.t seconds>` stamps, the full prompt text and its token ids are identical
//     (transformers' default sampling with several options, qwen-vl-utils' sampling, frame lists, two videos and an
//     image in one prompt),
//   - given the reference decoder's frames (torchcodec, stored as PNG), pixel_values_videos (CRC32 of the float32
//     bytes) and video_grid_thw are identical,
//   - our FFmpeg decoder's frames are compared with the reference decoder's; the difference is printed and bounded.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/prompt.h"
#include "engine/video_prompt.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "vision/image_decode.h"
#include "vision/image_processor.h"
#include "vision/video_decode.h"
#include "vision/video_processor.h"

namespace qwen3vl {
namespace {

using nlohmann::json;

std::string videos_dir() { return testing::fixtures_dir() + "/videos"; }
std::string goldens_dir() { return testing::fixtures_dir() + "/goldens/videos"; }

uint32_t crc32(const void* data, size_t size) {
  static uint32_t table[256];
  static bool ready = false;
  if (!ready) {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    ready = true;
  }
  uint32_t crc = 0xFFFFFFFFu;
  const auto* bytes = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ bytes[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

const json& index() {
  static const json root = json::parse(testing::read_file(goldens_dir() + "/index.json"));
  return root;
}

const Tokenizer& tokenizer() {
  static const Tokenizer tok = Tokenizer::from_file(testing::model_fixture("tiny-realtok-bf16") + "/tokenizer.json");
  return tok;
}

VideoProcessorConfig released_config() {
  VideoProcessorConfig config;
  config.min_pixels = 4096;
  config.max_pixels = 25165824;
  return config;
}

VideoOptions options_for(const json& c, VideoProcessorConfig& config) {
  VideoOptions o;
  o.sampling.rule = c["rule"] == "qwen-vl-utils" ? FrameSamplingRule::QwenVlUtils : FrameSamplingRule::Transformers;
  o.metadata = c.value("metadata_source", "scan") == "header" ? VideoMetadataSource::Header : VideoMetadataSource::Scan;
  const json& opt = c["options"];
  if (opt.contains("fps")) o.sampling.fps = opt["fps"].get<double>();
  if (opt.contains("num_frames")) o.sampling.num_frames = opt["num_frames"].get<int64_t>();
  if (opt.contains("nframes")) o.sampling.num_frames = opt["nframes"].get<int64_t>();
  if (opt.contains("min_frames")) o.sampling.min_frames = opt["min_frames"].get<int64_t>();
  if (opt.contains("max_frames")) o.sampling.max_frames = opt["max_frames"].get<int64_t>();
  if (opt.contains("start_seconds")) o.sampling.start_seconds = opt["start_seconds"].get<double>();
  if (opt.contains("end_seconds")) o.sampling.end_seconds = opt["end_seconds"].get<double>();
  if (opt.contains("min_pixels")) o.min_pixels = opt["min_pixels"].get<int64_t>();
  if (opt.contains("total_pixels")) o.total_pixels = opt["total_pixels"].get<int64_t>();
  if (opt.contains("cap_pixels_per_frame")) o.cap_pixels_per_frame = opt["cap_pixels_per_frame"].get<bool>();
  if (opt.contains("max_video_tokens")) config.max_video_tokens = opt["max_video_tokens"].get<int64_t>();
  return o;
}

std::string render_prompt(const std::vector<ContentPart::Type>& media, const std::vector<ProcessedVideo>& videos,
                          const std::vector<ProcessedImage>& images) {
  ChatTemplateOptions options;
  std::string text = apply_chat_template(single_turn_with_media("", index()["prompt"].get<std::string>(), media), options);
  text = expand_image_placeholders(text, images, 2);
  return expand_video_placeholders(text, videos, 2);
}

std::vector<std::string> stamps_of(const ProcessedVideo& video) {
  std::vector<std::string> out;
  for (double t : video.group_timestamps()) out.push_back(timestamp_text(t));
  return out;
}

void expect_prompt(const json& c, const std::string& prompt) {
  EXPECT_EQ(prompt, c["prompt_text"].get<std::string>());
  EXPECT_EQ(tokenizer().encode(prompt), c["input_ids"].get<std::vector<int32_t>>());
}

void expect_video(const json& meta, const ProcessedVideo& video, bool from_file = true) {
  if (from_file) {
    EXPECT_EQ(video.total_frames, meta["total_num_frames"].get<int64_t>());
  }
  EXPECT_EQ(video.fps, meta["fps"].get<double>());  // bit-identical double
  std::vector<double> golden_indices;
  for (const json& v : meta["frames_indices"]) golden_indices.push_back(v.get<double>());
  EXPECT_EQ(video.frame_times.size(), golden_indices.size());
  for (size_t k = 0; k < std::min(golden_indices.size(), video.frame_times.size()); ++k)
    EXPECT_EQ(video.frame_times[k], golden_indices[k] / meta["fps"].get<double>()) << "frame " << k;  // idx / fps
  const auto grid = meta["video_grid_thw"].get<std::vector<int64_t>>();
  EXPECT_EQ(video.grid.t, grid[0]);
  EXPECT_EQ(video.grid.h, grid[1]);
  EXPECT_EQ(video.grid.w, grid[2]);
}

// The reference frames of a case: one PNG with the frames stacked vertically.
std::vector<Image> reference_frames(const json& c) {
  const Image strip = decode_image_file(goldens_dir() + "/" + c["frames_png"].get<std::string>());
  const int width = c["frame_size"][0].get<int>(), height = c["frame_size"][1].get<int>();
  EXPECT_EQ(strip.width, width);
  std::vector<Image> frames(static_cast<size_t>(strip.height / height));
  for (size_t k = 0; k < frames.size(); ++k) {
    frames[k].width = width;
    frames[k].height = height;
    const size_t bytes = static_cast<size_t>(width) * height * 3;
    frames[k].rgb.assign(strip.rgb.begin() + static_cast<std::ptrdiff_t>(k * bytes),
                         strip.rgb.begin() + static_cast<std::ptrdiff_t>((k + 1) * bytes));
  }
  return frames;
}

TEST(VideoGolden, FileCasesMatchTransformersProcessor) {
  int checked = 0;
  for (const json& c : index()["cases"]) {
    if (c["kind"] != "file") continue;
    SCOPED_TRACE(c["name"].get<std::string>());
    VideoProcessorConfig config = released_config();
    const VideoOptions options = options_for(c, config);
    const VideoReader reader(videos_dir() + "/" + c["video"].get<std::string>(), options.metadata);
    ProcessedVideo video = plan_video(reader.info(), config, options);
    std::vector<int64_t> golden_indices;
    for (const json& v : c["frames_indices"]) golden_indices.push_back(v.get<int64_t>());
    EXPECT_EQ(video.frame_indices, golden_indices);
    expect_video(c, video);
    EXPECT_EQ(stamps_of(video), c["timestamps"].get<std::vector<std::string>>());
    video.source = c["video"];
    expect_prompt(c, render_prompt({ContentPart::Type::Video}, {video}, {}));
    ++checked;
  }
  EXPECT_GE(checked, 20);
}

TEST(VideoGolden, PixelValuesFromReferenceFramesAreIdentical) {
  int checked = 0;
  for (const json& c : index()["cases"]) {
    if (!c.contains("frames_png")) continue;
    SCOPED_TRACE(c["name"].get<std::string>());
    VideoProcessorConfig config = released_config();
    const VideoOptions options = options_for(c, config);
    std::vector<int64_t> indices;
    for (const json& v : c["frames_indices"]) indices.push_back(v.get<int64_t>());
    const ProcessedVideo video =
        preprocess_video_frames(reference_frames(c), indices, c["fps"].get<double>(), config, options);
    expect_video(c, video, /*from_file=*/false);
    EXPECT_EQ(static_cast<int64_t>(video.pixel_values.size()),
              c["pixel_values_shape"][0].get<int64_t>() * c["pixel_values_shape"][1].get<int64_t>());
    EXPECT_EQ(crc32(video.pixel_values.data(), video.pixel_values.size() * sizeof(float)),
              c["pixel_values_crc32"].get<uint32_t>());
    ++checked;
  }
  EXPECT_EQ(checked, 7);
}

// Our decoder (Debian's FFmpeg 5.1 through libav*, swscale bilinear RGB) against the reference decoder's frames
// (torchcodec 0.17 in exact mode, which loads the same Debian FFmpeg 5.1 libraries). Printed per video. Measured:
// identical on all seven files (also the 100-pixel-wide AVI, whose RGB rows need swscale's padded output).
TEST(VideoGolden, DecodedFramesAgreeWithReferenceDecoder) {
  for (const json& c : index()["cases"]) {
    if (!c.contains("frames_png")) continue;
    SCOPED_TRACE(c["name"].get<std::string>());
    const std::vector<Image> expected = reference_frames(c);
    std::vector<int64_t> indices;
    for (const json& v : c["frames_indices"]) indices.push_back(v.get<int64_t>());
    VideoReader reader(videos_dir() + "/" + c["video"].get<std::string>());
    int max_diff = 0;
    int64_t differing = 0, total = 0;
    double sum = 0;
    reader.read_frames(indices, [&](size_t k, int64_t, const Image& frame) {
      ASSERT_EQ(frame.rgb.size(), expected[k].rgb.size());
      for (size_t i = 0; i < frame.rgb.size(); ++i) {
        const int d = std::abs(int(frame.rgb[i]) - int(expected[k].rgb[i]));
        max_diff = std::max(max_diff, d);
        differing += d != 0;
        sum += d;
      }
      total += static_cast<int64_t>(frame.rgb.size());
    });
    std::printf("    %-18s %3zu frames: max |diff| %d, mean %.4f, %.3f%% of values differ (seeks %lld, decoded %lld)\n",
                c["video"].get<std::string>().c_str(), indices.size(), max_diff, sum / total, 100.0 * differing / total,
                static_cast<long long>(reader.stats().seeks), static_cast<long long>(reader.stats().frames_decoded));
    EXPECT_EQ(max_diff, 0);  // measured: bit-identical on all seven files (same FFmpeg 5.1 underneath)
  }
}

TEST(VideoGolden, FrameListsMatchTransformersProcessor) {
  for (const json& c : index()["cases"]) {
    if (c["kind"] != "frame_list") continue;
    SCOPED_TRACE(c["name"].get<std::string>());
    std::vector<std::string> paths;
    for (const json& name : c["frames"]) paths.push_back(videos_dir() + "/" + name.get<std::string>());
    const json& opt = c["options"];
    const std::vector<double> times = opt.value("times", std::vector<double>());
    std::optional<double> fps;
    if (opt.contains("fps")) fps = opt["fps"].get<double>();
    const ProcessedVideo video = preprocess_frame_list(paths, times, fps, released_config());
    const auto grid = c["video_grid_thw"].get<std::vector<int64_t>>();
    EXPECT_EQ(video.grid.t, grid[0]);
    EXPECT_EQ(video.grid.h, grid[1]);
    EXPECT_EQ(video.grid.w, grid[2]);
    EXPECT_EQ(crc32(video.pixel_values.data(), video.pixel_values.size() * sizeof(float)),
              c["pixel_values_crc32"].get<uint32_t>());
    EXPECT_EQ(stamps_of(video), c["timestamps"].get<std::vector<std::string>>());
    expect_prompt(c, render_prompt({ContentPart::Type::Video}, {video}, {}));
  }
}

TEST(VideoGolden, TwoVideosAndAnImageKeepTheirOwnMetadata) {
  for (const json& c : index()["cases"]) {
    if (c["kind"] != "mixed") continue;
    VideoProcessorConfig config = released_config();
    std::vector<ProcessedVideo> videos;
    for (size_t k = 0; k < c["videos"].size(); ++k) {
      const VideoReader reader(videos_dir() + "/" + c["videos"][k].get<std::string>());
      videos.push_back(plan_video(reader.info(), config, {}));
      expect_video(c["videos_meta"][k], videos.back());
    }
    const Image image = decode_image_file(goldens_dir() + "/" + c["image"].get<std::string>());
    const ProcessedImage processed = preprocess_image(image, ImageProcessorConfig{});
    const auto grid = c["image_grid_thw"].get<std::vector<int64_t>>();
    EXPECT_EQ(processed.grid.h, grid[1]);
    EXPECT_EQ(processed.grid.w, grid[2]);
    const std::string prompt = render_prompt(
        {ContentPart::Type::Video, ContentPart::Type::Image, ContentPart::Type::Video}, videos, {processed});
    EXPECT_EQ(prompt.find("<|vision_start|><0.3 seconds>"), prompt.find("<|vision_start|>"));
    expect_prompt(c, prompt);
  }
}

}  // namespace
}  // namespace qwen3vl
