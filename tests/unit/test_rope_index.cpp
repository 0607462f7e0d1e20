// transformers models/qwen3_vl/modeling_qwen3_vl.py, Qwen3VLModel.get_rope_index, on hand-checkable prompts,
// including the demo image (2048x1365, merged grid 43x64) worked out by hand.
#include <gtest/gtest.h>

#include "core/error.h"
#include "model/rope_index.h"

namespace qwen3vl {
namespace {

ModelConfig real_ids_config() {
  ModelConfig config;  // defaults: the released special-token ids
  config.vision_config.spatial_merge_size = 2;
  return config;
}

std::vector<int32_t> image_prompt(const ModelConfig& c, int64_t pads, int64_t text_after) {
  std::vector<int32_t> ids = {151644, 872, 198, static_cast<int32_t>(c.vision_start_token_id)};
  ids.insert(ids.end(), pads, static_cast<int32_t>(c.image_token_id));
  ids.push_back(static_cast<int32_t>(c.vision_end_token_id));
  for (int64_t i = 0; i < text_after; ++i) ids.push_back(100 + static_cast<int32_t>(i));
  return ids;
}

TEST(RopeIndex, TextOnlyCountsUpOnAllAxes) {
  const RopeIndex index = get_rope_index({5, 6, 7, 8}, real_ids_config(), {});
  EXPECT_EQ(index.positions.t, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(index.positions.h, index.positions.t);
  EXPECT_EQ(index.positions.w, index.positions.t);
  EXPECT_EQ(index.rope_delta, 0);
}

TEST(RopeIndex, DemoImageWorkedByHand) {
  // A 2048x1365 image: grid (1, 86, 128) -> merged 43 x 64 = 2752 tokens.
  const ModelConfig config = real_ids_config();
  const auto ids = image_prompt(config, 2752, 9);
  const RopeIndex index = get_rope_index(ids, config, {GridTHW{1, 86, 128}});
  const MropePositions& p = index.positions;
  EXPECT_EQ(p.t[3], 3);  // <|vision_start|>
  EXPECT_EQ(p.t[4], 4);
  EXPECT_EQ(p.h[4], 4);
  EXPECT_EQ(p.w[4], 4);
  const int64_t last = 4 + 2752 - 1;
  EXPECT_EQ(p.t[last], 4);
  EXPECT_EQ(p.h[last], 46);
  EXPECT_EQ(p.w[last], 67);
  EXPECT_EQ(p.t[4 + 64], 4);   // second merged row, first column
  EXPECT_EQ(p.h[4 + 64], 5);
  EXPECT_EQ(p.w[4 + 64], 4);
  EXPECT_EQ(p.t[last + 1], 68);  // <|vision_end|>
  EXPECT_EQ(p.w[last + 1], 68);
  EXPECT_EQ(index.rope_delta, -2688);
}

TEST(RopeIndex, VideoSlicesAreSeparateGroups) {
  ModelConfig config = real_ids_config();
  const int32_t vs = static_cast<int32_t>(config.vision_start_token_id);
  const int32_t ve = static_cast<int32_t>(config.vision_end_token_id);
  const int32_t vp = static_cast<int32_t>(config.video_token_id);
  // "<0.5 seconds>" text (2 tokens here), group of 2x2 merged, then again.
  const std::vector<int32_t> ids = {10, 11, vs, vp, vp, vp, vp, ve, 12, 13, vs, vp, vp, vp, vp, ve};
  const RopeIndex index = get_rope_index(ids, config, {}, {GridTHW{2, 4, 4}});
  EXPECT_EQ(index.positions.t, (std::vector<int64_t>{0, 1, 2, 3, 3, 3, 3, 5, 6, 7, 8, 9, 9, 9, 9, 11}));
  EXPECT_EQ(index.positions.h, (std::vector<int64_t>{0, 1, 2, 3, 3, 4, 4, 5, 6, 7, 8, 9, 9, 10, 10, 11}));
  EXPECT_EQ(index.positions.w, (std::vector<int64_t>{0, 1, 2, 3, 4, 3, 4, 5, 6, 7, 8, 9, 10, 9, 10, 11}));
  EXPECT_EQ(index.rope_delta, 12 - 16);
}

TEST(RopeIndex, PlaceholderCountMismatchIsAnError) {
  const ModelConfig config = real_ids_config();
  EXPECT_THROW(get_rope_index(image_prompt(config, 6, 1), config, {GridTHW{1, 4, 4}}), Error);
  EXPECT_THROW(get_rope_index(image_prompt(config, 4, 1), config, {}), Error);
  EXPECT_THROW(get_rope_index(image_prompt(config, 4, 1), config, {GridTHW{1, 4, 4}, GridTHW{1, 4, 4}}), Error);
}

}  // namespace
}  // namespace qwen3vl
