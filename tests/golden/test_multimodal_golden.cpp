// Image prompts end to end against transformers (fp32 tiny checkpoints, goldens written by
// scripts/reference/dump_multimodal_goldens.py): the PNG files go through our decoder and image processor
// (pixel_values must be identical), the vision tower, the scatter into <|image_pad|> rows, get_rope_index,
// DeepStack, the decoder and a greedy continuation of 32 tokens, for one image and for three of different sizes.
//
// Tolerances (fp32): the vision tower and decoder differ from PyTorch only in summation order and libm ulps;
// measured max |diff| is printed per stage. We allow 5e-5 on vision outputs and hidden states and 5e-5 on
// logits (|logits| ~ 1); positions and the rope delta must be exact, and the greedy ids identical.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/generate.h"
#include "engine/loaded_model.h"
#include "engine/vision_prefill.h"
#include "golden_util.h"
#include "test_util.h"
#include "vision/image_decode.h"
#include "vision/image_processor.h"

namespace qwen3vl {
namespace {

using nlohmann::json;

std::string multimodal_dir() { return testing::fixtures_dir() + "/multimodal"; }

std::vector<float> golden(const json& entry) { return testing::read_f32(multimodal_dir() + "/" + entry["file"].get<std::string>()); }

using testing::max_abs_diff;

void expect_close(const std::string& what, const std::vector<float>& ours, const std::vector<float>& theirs,
                  float tolerance) {
  const float diff = max_abs_diff(ours, theirs);
  std::printf("    %-18s max |diff| %.3g\n", what.c_str(), diff);
  EXPECT_LE(diff, tolerance) << what;
}

std::vector<ProcessedImage> preprocess_case(const LoadedModel& model, const json& test_case) {
  std::vector<ProcessedImage> images;
  for (const json& name : test_case["images"])
    images.push_back(preprocess_image(decode_image_file(multimodal_dir() + "/images/" + name.get<std::string>()),
                                      model.image_processor));
  return images;
}

void check_checkpoint(const std::string& name) {
  LoadOptions options;
  options.require_tokenizer = false;
  const auto model = load_model(testing::model_fixture(name), options);
  const json index = json::parse(testing::read_file(multimodal_dir() + "/" + name + "/index.json"));
  const int64_t hidden = model->config.text_config.hidden_size;
  for (const json& test_case : index["cases"]) {
    SCOPED_TRACE(name + " " + test_case["name"].get<std::string>());
    std::printf("  %s %s\n", name.c_str(), test_case["name"].get<std::string>().c_str());
    const std::vector<ProcessedImage> images = preprocess_case(*model, test_case);
    std::vector<float> pixel_values;
    for (size_t k = 0; k < images.size(); ++k) {
      const auto& grid = test_case["image_grid_thw"][k];
      EXPECT_EQ(images[k].grid.t, grid[0].get<int64_t>());
      EXPECT_EQ(images[k].grid.h, grid[1].get<int64_t>());
      EXPECT_EQ(images[k].grid.w, grid[2].get<int64_t>());
      pixel_values.insert(pixel_values.end(), images[k].pixel_values.begin(), images[k].pixel_values.end());
    }
    EXPECT_EQ(max_abs_diff(pixel_values, golden(test_case["pixel_values"])), 0.f) << "pixel_values";

    const auto ids = test_case["input_ids"].get<std::vector<int32_t>>();
    const PrefillInputs prefill = build_prefill(*model, ids, images);
    const auto& positions = test_case["position_ids"];
    EXPECT_EQ(prefill.rope.positions.t, positions[0].get<std::vector<int64_t>>());
    EXPECT_EQ(prefill.rope.positions.h, positions[1].get<std::vector<int64_t>>());
    EXPECT_EQ(prefill.rope.positions.w, positions[2].get<std::vector<int64_t>>());
    EXPECT_EQ(prefill.rope.rope_delta, test_case["rope_delta"].get<int64_t>());

    // The vision tower's output sits in the <|image_pad|> rows; the DeepStack features are kept per level.
    std::vector<float> vision_rows;
    for (int64_t row : prefill.visual_rows)
      vision_rows.insert(vision_rows.end(), prefill.embeds.begin() + row * hidden,
                         prefill.embeds.begin() + (row + 1) * hidden);
    expect_close("vision merger", vision_rows, golden(test_case["vision_embeds"]), 5e-5f);
    for (size_t k = 0; k < prefill.deepstack_features.size(); ++k)
      expect_close("deepstack " + std::to_string(k), prefill.deepstack_features[k],
                   golden(test_case["deepstack" + std::to_string(k)]), 5e-5f);

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
                   golden(test_case["layer" + std::to_string(l)]), 5e-5f);
    expect_close("final norm", captured["norm"], golden(test_case["norm"]), 5e-5f);
    expect_close("logits", logits, golden(test_case["logits"]), 5e-5f);

    GenerationRequest request;
    request.prompt_ids = ids;
    request.images = images;
    request.max_new_tokens = test_case["greedy"]["max_new_tokens"].get<int64_t>();
    const GenerationResult result = generate(*model, request);
    EXPECT_EQ(result.tokens, test_case["greedy"]["output_ids"].get<std::vector<int32_t>>());
  }
}

TEST(MultimodalGolden, TwoBStyleVisionMatchesTransformers) { check_checkpoint("tiny-fp32-tied"); }

TEST(MultimodalGolden, EightBStyleVisionHeadDim24MatchesTransformers) { check_checkpoint("tiny-vision-hd24-fp32"); }

TEST(MultimodalGolden, MixtureOfExpertsWithImagesMatchesTransformers) { check_checkpoint("tiny-moe-fp32"); }

}  // namespace
}  // namespace qwen3vl
