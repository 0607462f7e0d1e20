// Flattened training batches and packing (train/packing.h): samples concatenated into one row keep their own 3-D
// positions (each sample's get_rope_index, restarting at 0), cu_seqlens marks the segments, labels are the
// concatenation with every segment's first label ignored (so no token learns the next sample's first token), and
// images and videos follow in sample order. Packing is first fit within a window, deterministic.
#include <gtest/gtest.h>

#include "core/error.h"
#include "model/rope_index.h"
#include "unit/sft_fixtures.h"
#include "train/packing.h"

namespace qwen3vl {
namespace {

using Packs = std::vector<std::vector<size_t>>;

// Samples of the fixture: line 1 (text), line 2 (two images), line 3 (a video), line 9 (a packed record of two).
const std::vector<TrainSample>& fixture_samples() {
  static const std::vector<TrainSample> samples = [] {
    const SftDataset dataset = read_sft_dataset(testing::sft_dataset_path(), testing::sft_read_options());
    const SampleBuilder builder = testing::realtok_sample_builder();
    std::vector<TrainSample> out;
    for (size_t r : {0, 1, 2})
      out.push_back(builder.build(dataset.records[r].items[0]));
    for (const SftItem& item : dataset.records[8].items) out.push_back(builder.build(item));
    return out;
  }();
  return samples;
}

template <typename T>
std::vector<T> slice(const std::vector<T>& v, int64_t begin, int64_t end) {
  return std::vector<T>(v.begin() + begin, v.begin() + end);
}

TEST(Packing, PlanIsFirstFitWithinAWindow) {
  EXPECT_EQ(plan_packs({5, 3, 4, 2, 6}, 8, 0), (Packs{{0, 1}, {2, 3}, {4}}));
  EXPECT_EQ(plan_packs({6, 6, 2, 2}, 8, 0), (Packs{{0, 2}, {1, 3}}));
  EXPECT_EQ(plan_packs({6, 6, 2, 2}, 8, 2), (Packs{{0}, {1}, {2, 3}}));
  EXPECT_EQ(plan_packs({10, 1, 8}, 8, 0), (Packs{{0}, {1}, {2}}));  // too long: a pack of its own
  EXPECT_TRUE(plan_packs({}, 8, 4).empty());
  EXPECT_THROW(plan_packs({1}, 0, 0), Error);
}

TEST(Packing, BatchKeepsEachSamplesPositionsLabelsAndMedia) {
  const std::vector<TrainSample>& samples = fixture_samples();
  std::vector<TrainSample> members(samples.begin(), samples.begin() + 3);  // text, two images, video
  const TrainBatch batch = make_batch(members);

  ASSERT_EQ(batch.segments(), 3);
  EXPECT_EQ(batch.cu_seqlens, (std::vector<int64_t>{0, samples[0].size(), samples[0].size() + samples[1].size(),
                                                    samples[0].size() + samples[1].size() + samples[2].size()}));
  EXPECT_EQ(batch.size(), batch.cu_seqlens.back());
  ASSERT_EQ(batch.positions.size(), batch.size());
  ASSERT_EQ(batch.labels.size(), static_cast<size_t>(batch.size()));

  const ModelConfig config = load_model_config(testing::model_fixture("tiny-realtok-bf16") + "/config.json");
  std::vector<int32_t> concatenated_labels;
  for (int64_t s = 0; s < 3; ++s) {
    const TrainSample& sample = samples[static_cast<size_t>(s)];
    const int64_t begin = batch.cu_seqlens[s], end = batch.cu_seqlens[s + 1];
    EXPECT_EQ(batch.sources[s], sample.where);
    EXPECT_EQ(slice(batch.input_ids, begin, end), sample.input_ids);
    // Positions restart at 0 and equal the sample's own get_rope_index.
    std::vector<GridTHW> images, videos;
    for (const ProcessedImage& image : sample.images) images.push_back(image.grid);
    for (const ProcessedVideo& video : sample.videos) videos.push_back(video.grid);
    const MropePositions own = get_rope_index(sample.input_ids, config, images, videos).positions;
    EXPECT_EQ(batch.positions.t[begin], 0);
    EXPECT_EQ(slice(batch.positions.t, begin, end), own.t);
    EXPECT_EQ(slice(batch.positions.h, begin, end), own.h);
    EXPECT_EQ(slice(batch.positions.w, begin, end), own.w);
    // The label the previous segment's last token would be trained to predict is ignored.
    EXPECT_EQ(batch.labels[begin], kIgnoreLabel);
    concatenated_labels.insert(concatenated_labels.end(), sample.labels.begin(), sample.labels.end());
  }
  // A rendered sample starts with <|im_start|>, never supervised, so the batch labels are the plain concatenation.
  EXPECT_EQ(batch.labels, concatenated_labels);
  EXPECT_EQ(batch.supervised_tokens(),
            samples[0].supervised_tokens() + samples[1].supervised_tokens() + samples[2].supervised_tokens());

  ASSERT_EQ(batch.images.size(), 2u);
  EXPECT_EQ(batch.images[0].pixel_values, samples[1].images[0].pixel_values);
  EXPECT_EQ(batch.images[1].pixel_values, samples[1].images[1].pixel_values);
  ASSERT_EQ(batch.videos.size(), 1u);
  EXPECT_EQ(batch.video_grids().at(0).t, samples[2].videos[0].grid.t);
  EXPECT_EQ(batch.videos[0].pixel_values, samples[2].videos[0].pixel_values);
}

TEST(Packing, SegmentStartLabelIsAlwaysIgnored) {
  TrainSample a, b;
  a.where = "a:1";
  b.where = "b:1";
  a.input_ids = {1, 2, 3};
  a.labels = {kIgnoreLabel, 2, 3};
  b.input_ids = {4, 5};
  b.labels = {4, 5};  // a sample built elsewhere that supervises its first token
  a.positions = text_positions(0, 3);
  b.positions = text_positions(0, 2);
  const TrainBatch batch = make_batch({a, b});
  EXPECT_EQ(batch.labels, (std::vector<int32_t>{kIgnoreLabel, 2, 3, kIgnoreLabel, 5}));
  EXPECT_EQ(batch.positions.t, (std::vector<int64_t>{0, 1, 2, 0, 1}));
  EXPECT_EQ(batch.cu_seqlens, (std::vector<int64_t>{0, 3, 5}));

  b.labels.pop_back();
  EXPECT_THROW(make_batch({a, b}), Error);
  EXPECT_THROW(make_batch({}), Error);
}

TEST(Packing, PackSamplesGroupsInDatasetOrder) {
  const std::vector<TrainSample>& samples = fixture_samples();  // 42, 42, 55, 20, 33 tokens
  ASSERT_EQ(samples.size(), 5u);
  std::vector<int64_t> lengths;
  for (const TrainSample& s : samples) lengths.push_back(s.size());
  ASSERT_EQ(lengths, (std::vector<int64_t>{42, 42, 55, 20, 33}));
  const std::vector<TrainBatch> batches = pack_samples(samples, 100, 0);
  // First fit: {42, 42} (84); 55 opens a second pack; 20 does not fit the first (104) and joins the second (75);
  // 33 fits neither and opens a third.
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].sources, (std::vector<std::string>{samples[0].where, samples[1].where}));
  EXPECT_EQ(batches[1].sources, (std::vector<std::string>{samples[2].where, samples[3].where}));
  EXPECT_EQ(batches[2].sources, (std::vector<std::string>{samples[4].where}));
  for (const TrainBatch& batch : batches) EXPECT_LE(batch.size(), 100);
  EXPECT_EQ(batches[1].images.size(), 0u);
  EXPECT_EQ(batches[1].videos.size(), 1u);
  EXPECT_EQ(batches[2].images.size(), 1u);
}

}  // namespace
}  // namespace qwen3vl
