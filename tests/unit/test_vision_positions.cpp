// Vision index math on hand-checkable grids: the processor's patch order, the bilinear position-embedding taps and
// weights, the 2D rotary angles, the attention segments; plus the same functions against transformers at released
// sizes (48x48 table, head_dim 64 and 72; fixtures from scripts/reference/dump_vision_goldens.py).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/vision_positions.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

using nlohmann::json;

std::string vision_goldens() { return testing::fixtures_dir() + "/goldens/vision"; }

TEST(VisionPositions, PatchOrderIsTwoByTwoBlocksRowMajor) {
  // grid 1 x 4 x 6, merge 2: blocks (0,0) (0,1) (0,2) / (1,0) (1,1) (1,2), each block's 4 members row-major.
  const auto p = patch_positions(GridTHW{1, 4, 6}, 2);
  ASSERT_EQ(p.size(), 24u);
  const int64_t expected[12][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}, {0, 2}, {0, 3},
                                   {1, 2}, {1, 3}, {0, 4}, {0, 5}, {1, 4}, {1, 5}};
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(p[i].row, expected[i][0]) << i;
    EXPECT_EQ(p[i].col, expected[i][1]) << i;
  }
  EXPECT_EQ(p[12].row, 2);  // second block row starts at token 12
  EXPECT_EQ(p[12].col, 0);
  EXPECT_EQ(p[23].row, 3);
  EXPECT_EQ(p[23].col, 5);
  // Qwen2VLImageProcessor._preprocess's permute as index math, for every token
  for (int64_t s = 0; s < 24; ++s) {
    const int64_t bh = s / 12, bw = (s % 12) / 4, ih = (s % 4) / 2, iw = s % 2;
    EXPECT_EQ(p[s].row, bh * 2 + ih);
    EXPECT_EQ(p[s].col, bw * 2 + iw);
  }
  // every temporal slice repeats the positions
  const auto video = patch_positions(GridTHW{2, 4, 6}, 2);
  ASSERT_EQ(video.size(), 48u);
  for (int i = 0; i < 24; ++i) {
    EXPECT_EQ(video[24 + i].row, p[i].row);
    EXPECT_EQ(video[24 + i].col, p[i].col);
  }
}

TEST(VisionPositions, AxisTapsOnAHandCheckableGrid) {
  // A 4-entry table axis stretched to 6 patches: src = c * 3 / 5 = 0, 0.6, 1.2, 1.8, 2.4, 3 (align_corners).
  const float src[6] = {0.f, 3.f / 5.f, 6.f / 5.f, 9.f / 5.f, 12.f / 5.f, 3.f};
  const int64_t lo[6] = {0, 0, 1, 1, 2, 3}, hi[6] = {1, 1, 2, 2, 3, 3};
  for (int c = 0; c < 6; ++c) {
    const AxisTaps t = pos_embed_axis_taps(c, 6, 4);
    EXPECT_EQ(t.lo, lo[c]) << c;
    EXPECT_EQ(t.hi, hi[c]) << c;
    const float frac = src[c] - static_cast<float>(lo[c]);
    EXPECT_EQ(t.weight_lo, 1.0f - frac) << c;
    EXPECT_EQ(t.weight_hi, 1.0f - std::fabs(frac - 1.0f)) << c;
    EXPECT_NEAR(t.weight_hi, frac, 1e-7) << c;
  }
  // the last patch sits exactly on the last table entry: hi is clamped and gets weight 0
  const AxisTaps last = pos_embed_axis_taps(5, 6, 4);
  EXPECT_EQ(last.weight_lo, 1.0f);
  EXPECT_EQ(last.weight_hi, 0.0f);
  // an axis as long as the table maps patch i onto entry i
  for (int i = 0; i < 4; ++i) {
    const AxisTaps t = pos_embed_axis_taps(i, 4, 4);
    EXPECT_EQ(t.lo, i);
    EXPECT_EQ(t.weight_lo, 1.0f);
    EXPECT_EQ(t.weight_hi, 0.0f);
  }
}

TEST(VisionPositions, PosEmbedTapsCombineRowAndColumn) {
  // grid 1 x 4 x 6 on a 4x4 table: rows map exactly (src = r), columns as in the test above.
  const auto taps = pos_embed_taps(GridTHW{1, 4, 6}, 4, 2);
  const auto pos = patch_positions(GridTHW{1, 4, 6}, 2);
  ASSERT_EQ(taps.size(), 24u);
  for (size_t i = 0; i < taps.size(); ++i) {
    const AxisTaps r = pos_embed_axis_taps(pos[i].row, 4, 4), c = pos_embed_axis_taps(pos[i].col, 6, 4);
    EXPECT_EQ(taps[i].index[0], r.lo * 4 + c.lo);
    EXPECT_EQ(taps[i].index[1], r.lo * 4 + c.hi);
    EXPECT_EQ(taps[i].index[2], r.hi * 4 + c.lo);
    EXPECT_EQ(taps[i].index[3], r.hi * 4 + c.hi);
    EXPECT_EQ(taps[i].weight[0], r.weight_lo * c.weight_lo);
    EXPECT_EQ(taps[i].weight[1], r.weight_lo * c.weight_hi);
    EXPECT_EQ(taps[i].weight[2], r.weight_hi * c.weight_lo);
    EXPECT_EQ(taps[i].weight[3], r.weight_hi * c.weight_hi);
  }
  // token 5 = block (0,1) member (0,1) = patch (0, 3): column src 1.8 -> entries 1 and 2 of row 0
  EXPECT_EQ(taps[5].index[0], 1);
  EXPECT_EQ(taps[5].index[1], 2);
  EXPECT_NEAR(taps[5].weight[0], 0.2f, 1e-6);
  EXPECT_NEAR(taps[5].weight[1], 0.8f, 1e-6);
  EXPECT_EQ(taps[5].weight[2], 0.0f);  // row weight hi is 0: src row is exactly 0
}

TEST(VisionPositions, InterpolationBlendsInFloatAndRoundsOnce) {
  // A 2x2 table (D = 1) of bf16 values and float32 weights: products and their sum stay float32 (HF multiplies the
  // bf16 rows by float32 weights, which promotes), summed in tap order; only the sum is rounded to bf16.
  const float values[4] = {1.0f, 2.0f, 3.0f, 4.09375f};
  uint16_t table_bits[4];
  for (int k = 0; k < 4; ++k) table_bits[k] = f32_to_bf16(values[k]);
  const WeightMatrix table{DType::BF16, table_bits, 4, 1};
  PosEmbedTaps taps;
  const float weights[4] = {0.3f, 0.2f, 0.4f, 0.1f};
  for (int k = 0; k < 4; ++k) {
    taps.index[k] = 3 - k;  // any table rows, in tap order
    taps.weight[k] = weights[k];
  }
  float sum = values[3] * weights[0];
  sum += values[2] * weights[1];
  sum += values[1] * weights[2];
  sum += values[0] * weights[3];
  float out = 0.f;
  interpolate_pos_embed(table, &taps, 1, &out, Precision::F32);
  EXPECT_EQ(out, sum);
  EXPECT_NE(sum, round_to_bf16(sum));  // the test means something: the float sum is not a bf16 value
  interpolate_pos_embed(table, &taps, 1, &out, Precision::BF16);
  EXPECT_EQ(out, round_to_bf16(sum));
}

TEST(VisionPositions, AxisTapsMatchTransformersAtReleasedSizes) {
  std::ifstream in(vision_goldens() + "/axis_taps.json");
  const json golden = json::parse(in);
  const int64_t side = golden["side"];
  for (const json& c : golden["cases"]) {
    const int64_t size = c["size"];
    for (int64_t i = 0; i < size; ++i) {
      const AxisTaps t = pos_embed_axis_taps(i, size, side);
      ASSERT_EQ(t.lo, c["lo"][i].get<int64_t>()) << size << " " << i;
      ASSERT_EQ(t.hi, c["hi"][i].get<int64_t>()) << size << " " << i;
      ASSERT_EQ(t.weight_lo, c["weight_lo"][i].get<float>()) << size << " " << i;  // bit-equal
      ASSERT_EQ(t.weight_hi, c["weight_hi"][i].get<float>()) << size << " " << i;
    }
  }
}

TEST(VisionRotary, AnglesOnAHandCheckablePosition) {
  // head_dim 16: head_dim/4 = 4 frequencies 10000^(-j/4) = 1, 0.1, 0.01, 0.001.
  const VisionRotary rotary(16);
  ASSERT_EQ(rotary.inv_freq().size(), 4u);
  const double expected_freq[4] = {1.0, 0.1, 0.01, 0.001};
  for (int j = 0; j < 4; ++j) EXPECT_NEAR(rotary.inv_freq()[j], expected_freq[j], 1e-8);
  const PatchPosition p{2, 3};  // row 2, col 3
  float cos[16], sin[16];
  rotary.compute(&p, 1, cos, sin);
  for (int j = 0; j < 4; ++j) {
    // dims 0..3: row angles; 4..7: col angles; 8..15 repeat 0..7 (rotate_half pairs j with j + 8)
    EXPECT_NEAR(cos[j], std::cos(2.0 * expected_freq[j]), 1e-7) << j;
    EXPECT_NEAR(sin[j], std::sin(2.0 * expected_freq[j]), 1e-7) << j;
    EXPECT_NEAR(cos[4 + j], std::cos(3.0 * expected_freq[j]), 1e-7) << j;
    EXPECT_NEAR(sin[4 + j], std::sin(3.0 * expected_freq[j]), 1e-7) << j;
  }
  for (int j = 0; j < 8; ++j) {
    EXPECT_EQ(cos[8 + j], cos[j]);
    EXPECT_EQ(sin[8 + j], sin[j]);
  }
  // head_dim 24 (not a power of two): 6 frequencies 10000^(-j/6)
  const VisionRotary rotary24(24);
  ASSERT_EQ(rotary24.inv_freq().size(), 6u);
  for (int j = 0; j < 6; ++j)  // float32 math: within 2 float ulps of the exact value
    EXPECT_NEAR(rotary24.inv_freq()[j], std::pow(10000.0, -j / 6.0), 2.4e-7 * std::pow(10000.0, -j / 6.0));
}

TEST(VisionRotary, MatchesTransformersForHeadDim64And72) {
  std::ifstream in(vision_goldens() + "/index_math.json");
  const json golden = json::parse(in);
  std::vector<PatchPosition> positions;
  for (const json& p : golden["positions"]) positions.push_back(PatchPosition{p[0], p[1]});
  const int64_t n = static_cast<int64_t>(positions.size());
  for (const json& c : golden["cases"]) {
    const int64_t hd = c["head_dim"];
    SCOPED_TRACE("head_dim " + std::to_string(hd));
    const VisionRotary rotary(hd, c["rope_theta"].get<double>());
    const auto inv_freq = c["inv_freq"].get<std::vector<float>>();
    EXPECT_EQ(rotary.inv_freq(), inv_freq);  // bit-equal
    std::vector<float> cos(n * hd), sin(n * hd);
    rotary.compute(positions.data(), n, cos.data(), sin.data());
    const auto expected_cos = testing::read_f32(vision_goldens() + "/" + c["cos"].get<std::string>());
    const auto expected_sin = testing::read_f32(vision_goldens() + "/" + c["sin"].get<std::string>());
    float worst = 0.f;
    for (size_t i = 0; i < cos.size(); ++i)
      worst = std::max({worst, std::fabs(cos[i] - expected_cos[i]), std::fabs(sin[i] - expected_sin[i])});
    // glibc vs SLEEF cos/sin (torch's vectorized kernels): each within 1 ulp of the true value, so at most 2 ulps
    // (1.2e-7 below 1) apart; measured 1 ulp (6e-8) for angles up to 1000 rad.
    std::printf("  vision rotary head_dim %lld: max |diff| %.3g\n", static_cast<long long>(hd), worst);
    EXPECT_LE(worst, 1.2e-7f);
  }
}

TEST(VisionPositions, OneAttentionSegmentPerTemporalSlice) {
  const auto cu = vision_cu_seqlens({GridTHW{1, 4, 6}, GridTHW{2, 4, 4}, GridTHW{1, 2, 2}});
  EXPECT_EQ(cu, (std::vector<int64_t>{0, 24, 40, 56, 60}));
}

}  // namespace
}  // namespace qwen3vl
