// Fine-tuning samples against qwen-vl-finetune's preprocessing (goldens: scripts/reference/make_label_goldens.py,
// transformers 5.23's Qwen3VLProcessor on tests/fixtures/train/data/sft_mixed.jsonl): for every sample of the file
// (multi-turn text, two images, a video, a video and an image with Unicode whitespace around the tags, the
// "assistant"-in-text quirk, a "system" turn in the conversations format, the messages format with a system prompt,
// image_url and video parts, a packed record), the input ids, both label rules, the image and video grids and the
// 3-D positions are identical.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "../unit/sft_fixtures.h"

namespace qwen3vl {
namespace {

using nlohmann::json;

const json& golden() {
  static const json root = json::parse(testing::read_file(testing::fixtures_dir() + "/train/labels/sft_mixed.json"));
  return root;
}

std::vector<std::vector<int64_t>> grid_rows(const std::vector<GridTHW>& grids) {
  std::vector<std::vector<int64_t>> rows;
  for (const GridTHW& g : grids) rows.push_back({g.t, g.h, g.w});
  return rows;
}

// The item a golden sample was made from: its record starts on golden line `line`.
const SftItem& item_for(const SftDataset& dataset, const json& sample) {
  for (const SftRecord& record : dataset.records)
    if (record.source.line == sample["line"].get<int64_t>()) {
      const int64_t k = sample["packed_index"].get<int64_t>();
      EXPECT_EQ(record.packed, k >= 0);
      return record.items.at(k < 0 ? 0 : static_cast<size_t>(k));
    }
  throw std::runtime_error("no record on line " + sample["line"].dump());
}

TEST(SftLabelsGolden, BudgetMatchesTheGoldenScript) {
  const json& b = golden()["budget"];
  const MediaBudget budget = testing::sft_golden_budget();
  EXPECT_EQ(b["min_pixels"].get<int64_t>(), *budget.min_pixels);
  EXPECT_EQ(b["max_pixels"].get<int64_t>(), *budget.max_pixels);
  EXPECT_EQ(b["video_min_pixels"].get<int64_t>(), *budget.video_min_pixels);
  EXPECT_EQ(b["video_max_pixels"].get<int64_t>(), *budget.video_max_pixels);
  EXPECT_EQ(b["video_fps"].get<double>(), *budget.video_fps);
  EXPECT_EQ(b["video_min_frames"].get<int64_t>(), *budget.video_min_frames);
  EXPECT_EQ(b["video_max_frames"].get<int64_t>(), *budget.video_max_frames);
}

TEST(SftLabelsGolden, EverySampleMatchesTheOfficialPreprocessing) {
  const SftDataset dataset = read_sft_dataset(testing::sft_dataset_path(), testing::sft_read_options());
  ASSERT_TRUE(dataset.skipped.empty());
  const SampleBuilder any_token = testing::realtok_sample_builder();
  SampleOptions after_im_start_options;
  after_im_start_options.span_rule = AssistantSpanRule::AfterImStart;
  const SampleBuilder after_im_start = testing::realtok_sample_builder(after_im_start_options);

  const json& samples = golden()["samples"];
  ASSERT_EQ(samples.size(), 10u);
  int rules_differ = 0, with_images = 0, with_videos = 0, messages_format = 0;
  for (const json& expected : samples) {
    const SftItem& item = item_for(dataset, expected);
    SCOPED_TRACE(item.where());
    const TrainSample sample = any_token.build(item);
    EXPECT_EQ(sample.input_ids, expected["input_ids"].get<std::vector<int32_t>>());
    EXPECT_EQ(sample.labels, expected["labels"].get<std::vector<int32_t>>());
    EXPECT_EQ(after_im_start.build(item).labels, expected["labels_after_im_start"].get<std::vector<int32_t>>());
    std::vector<GridTHW> image_grids, video_grids;
    for (const ProcessedImage& image : sample.images) image_grids.push_back(image.grid);
    for (const ProcessedVideo& video : sample.videos) video_grids.push_back(video.grid);
    EXPECT_EQ(grid_rows(image_grids), expected["image_grid_thw"].get<std::vector<std::vector<int64_t>>>());
    EXPECT_EQ(grid_rows(video_grids), expected["video_grid_thw"].get<std::vector<std::vector<int64_t>>>());
    const auto positions = expected["position_ids"].get<std::vector<std::vector<int64_t>>>();
    ASSERT_EQ(positions.size(), 3u);
    EXPECT_EQ(sample.positions.t, positions[0]);
    EXPECT_EQ(sample.positions.h, positions[1]);
    EXPECT_EQ(sample.positions.w, positions[2]);
    rules_differ += expected["labels"] != expected["labels_after_im_start"];
    with_images += !image_grids.empty();
    with_videos += !video_grids.empty();
    messages_format += expected["format"] == "messages";
  }
  // The fixture covers what it claims to.
  EXPECT_EQ(rules_differ, 1);
  EXPECT_GE(with_images, 4);
  EXPECT_GE(with_videos, 3);
  EXPECT_EQ(messages_format, 2);
}

}  // namespace
}  // namespace qwen3vl
