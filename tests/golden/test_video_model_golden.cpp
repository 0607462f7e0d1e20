// Video prompts end to end on the tiny fp32 checkpoint against transformers (goldens: the "model" part of
// scripts/reference/dump_video_goldens.py): the reference decoder's frames go through our video processor with the
// config found in the checkpoint directory (pixel_values must be identical), the vision tower (a call of its own for
// the videos, as HF), the scatter into <|video_pad|> rows, get_rope_index with the per-frame-pair groups, DeepStack
// rows joined in sequence order across images and videos, the decoder and 32 greedy tokens. Cases: one video; two
// videos of different native fps (24 and 30000/1001) around an image.
//
// Tolerances (fp32, as the image goldens): 5e-5 on the visual rows, DeepStack rows, hidden states and logits
// (|values| ~ 1; measured max |diff| printed per stage); positions, rope delta and the greedy ids exact.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/generate.h"
#include "engine/loaded_model.h"
#include "engine/vision_prefill.h"
#include "test_util.h"
#include "vision/image_decode.h"
#include "vision/video_processor.h"

namespace qwen3vl {
namespace {

using nlohmann::json;

std::string goldens_dir() { return testing::fixtures_dir() + "/goldens/videos"; }

uint32_t crc32(const void* data, size_t size) {
  uint32_t crc = 0xFFFFFFFFu;
  const auto* bytes = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < size; ++i) {
    crc ^= bytes[i];
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
  }
  return crc ^ 0xFFFFFFFFu;
}

std::vector<float> golden(const json& entry) {
  return testing::read_f32(goldens_dir() + "/" + entry["file"].get<std::string>());
}

void expect_close(const std::string& what, const std::vector<float>& ours, const std::vector<float>& theirs,
                  float tolerance) {
  ASSERT_EQ(ours.size(), theirs.size()) << what;
  float worst = 0.f;
  for (size_t i = 0; i < ours.size(); ++i) worst = std::max(worst, std::fabs(ours[i] - theirs[i]));
  std::printf("    %-18s max |diff| %.3g\n", what.c_str(), worst);
  EXPECT_LE(worst, tolerance) << what;
}

std::vector<Image> strip_frames(const std::string& png, size_t count) {
  const Image strip = decode_image_file(goldens_dir() + "/" + png);
  const int height = strip.height / static_cast<int>(count);
  std::vector<Image> frames(count);
  const size_t bytes = static_cast<size_t>(strip.width) * height * 3;
  for (size_t k = 0; k < count; ++k) {
    frames[k].width = strip.width;
    frames[k].height = height;
    frames[k].rgb.assign(strip.rgb.begin() + static_cast<std::ptrdiff_t>(k * bytes),
                         strip.rgb.begin() + static_cast<std::ptrdiff_t>((k + 1) * bytes));
  }
  return frames;
}

TEST(VideoModelGolden, TinyCheckpointMatchesTransformers) {
  const std::string dir = testing::model_fixture("tiny-fp32-tied");
  LoadOptions load_options;
  load_options.require_tokenizer = false;
  const auto model = load_model(dir, load_options);
  // No video_preprocessor_config.json: transformers falls back to preprocessor_config.json, and so do we.
  const VideoProcessorConfig config = load_video_processor_config(dir);
  EXPECT_EQ(config.min_pixels, 4096);
  EXPECT_EQ(config.max_pixels, 65536);
  const json index = json::parse(testing::read_file(goldens_dir() + "/model/index.json"));
  const int64_t hidden = model->config.text_config.hidden_size;

  for (const json& c : index["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    std::printf("  %s\n", c["name"].get<std::string>().c_str());
    std::vector<ProcessedImage> images;
    std::vector<ProcessedVideo> videos;
    for (const json& item : c["items"]) {
      const auto grid = item["grid"].get<std::vector<int64_t>>();
      if (item["kind"] == "image") {
        images.push_back(preprocess_image(
            decode_image_file(testing::fixtures_dir() + "/multimodal/images/" + item["file"].get<std::string>()),
            model->image_processor));
        EXPECT_EQ(crc32(images.back().pixel_values.data(), images.back().pixel_values.size() * 4),
                  item["pixel_values_crc32"].get<uint32_t>());
        continue;
      }
      const auto indices = item["frames_indices"].get<std::vector<int64_t>>();
      videos.push_back(preprocess_video_frames(strip_frames(item["frames_png"], indices.size()), indices,
                                               item["fps"].get<double>(), config));
      const ProcessedVideo& video = videos.back();
      EXPECT_EQ(video.grid.t, grid[0]);
      EXPECT_EQ(video.grid.h, grid[1]);
      EXPECT_EQ(video.grid.w, grid[2]);
      EXPECT_EQ(crc32(video.pixel_values.data(), video.pixel_values.size() * 4),
                item["pixel_values_crc32"].get<uint32_t>());
    }

    const auto ids = c["input_ids"].get<std::vector<int32_t>>();
    const PrefillInputs prefill = build_prefill(*model, ids, images, {}, videos);
    const auto& positions = c["position_ids"];
    EXPECT_EQ(prefill.rope.positions.t, positions[0].get<std::vector<int64_t>>());
    EXPECT_EQ(prefill.rope.positions.h, positions[1].get<std::vector<int64_t>>());
    EXPECT_EQ(prefill.rope.positions.w, positions[2].get<std::vector<int64_t>>());
    EXPECT_EQ(prefill.rope.rope_delta, c["rope_delta"].get<int64_t>());

    std::vector<float> visual;
    for (int64_t row : prefill.visual_rows)
      visual.insert(visual.end(), prefill.embeds.begin() + row * hidden, prefill.embeds.begin() + (row + 1) * hidden);
    expect_close("visual rows", visual, golden(c["visual_embeds"]), 5e-5f);
    for (size_t k = 0; k < prefill.deepstack_features.size(); ++k)
      expect_close("deepstack " + std::to_string(k), prefill.deepstack_features[k],
                   golden(c["deepstack" + std::to_string(k)]), 5e-5f);

    std::map<std::string, std::vector<float>> captured;
    const TensorHook hook = [&](const std::string& tensor, const float* data, int64_t rows, int64_t cols) {
      captured[tensor].assign(data, data + rows * cols);
    };
    const int64_t n = static_cast<int64_t>(ids.size());
    KVCache cache = model->decoder->make_cache(n);
    DecoderWorkspace work;
    std::vector<float> logits;
    const DeepstackInjection deepstack = prefill.deepstack();
    model->decoder->forward(prefill.embeds.data(), n, prefill.rope.positions, cache, work, LogitsRows::All, logits,
                            hook, &deepstack);
    for (int64_t l = 0; l < model->config.text_config.num_hidden_layers; ++l)
      expect_close("decoder layer " + std::to_string(l), captured["layers." + std::to_string(l)],
                   golden(c["layer" + std::to_string(l)]), 5e-5f);
    expect_close("final norm", captured["norm"], golden(c["norm"]), 5e-5f);
    const int64_t vocab = static_cast<int64_t>(logits.size()) / n;
    expect_close("logits (last 8)", std::vector<float>(logits.end() - 8 * vocab, logits.end()),
                 golden(c["logits_last8"]), 5e-5f);

    GenerationRequest request;
    request.prompt_ids = ids;
    request.images = images;
    request.videos = videos;
    request.max_new_tokens = c["greedy"]["max_new_tokens"].get<int64_t>();
    EXPECT_EQ(generate(*model, request).tokens, c["greedy"]["output_ids"].get<std::vector<int32_t>>());
  }
}

}  // namespace
}  // namespace qwen3vl
