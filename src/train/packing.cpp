#include "train/packing.h"

#include <algorithm>
#include <iterator>

#include "core/error.h"

namespace qwen3vl {
namespace {

template <typename T>
void append(std::vector<T>& to, std::vector<T>& from) {
  to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

}  // namespace

std::vector<GridTHW> TrainBatch::image_grids() const {
  std::vector<GridTHW> grids;
  for (const ProcessedImage& image : images) grids.push_back(image.grid);
  return grids;
}

std::vector<GridTHW> TrainBatch::video_grids() const {
  std::vector<GridTHW> grids;
  for (const ProcessedVideo& video : videos) grids.push_back(video.grid);
  return grids;
}

TrainBatch make_batch(std::vector<TrainSample> samples) {
  if (samples.empty()) throw_error("a training batch needs at least one sample");
  TrainBatch batch;
  batch.cu_seqlens.push_back(0);
  for (TrainSample& sample : samples) {
    if (sample.labels.size() != sample.input_ids.size() || sample.positions.size() != sample.size())
      throw_error(sample.where, ": ", sample.size(), " input ids but ", sample.labels.size(), " labels and ",
                  sample.positions.size(), " positions");
    if (sample.size() == 0) throw_error(sample.where, ": the sample has no tokens");
    // The loss shifts labels by one, so this label is what the previous segment's last token would predict.
    sample.labels.front() = kIgnoreLabel;
    append(batch.input_ids, sample.input_ids);
    append(batch.labels, sample.labels);
    append(batch.positions.t, sample.positions.t);
    append(batch.positions.h, sample.positions.h);
    append(batch.positions.w, sample.positions.w);
    batch.cu_seqlens.push_back(batch.size());
    append(batch.images, sample.images);
    append(batch.videos, sample.videos);
    batch.sources.push_back(std::move(sample.where));
  }
  return batch;
}

std::vector<std::vector<size_t>> plan_packs(const std::vector<int64_t>& lengths, int64_t pack_length, size_t window) {
  if (pack_length <= 0) throw_error("the pack length must be positive, got ", pack_length);
  std::vector<std::vector<size_t>> packs;
  const size_t step = window == 0 ? lengths.size() : window;
  for (size_t begin = 0; begin < lengths.size(); begin += step) {
    const size_t end = std::min(lengths.size(), begin + step);
    const size_t first_pack = packs.size();
    std::vector<int64_t> used;  // tokens in each open pack of this window
    for (size_t i = begin; i < end; ++i) {
      size_t k = 0;
      while (k < used.size() && used[k] + lengths[i] > pack_length) ++k;
      if (k == used.size()) {
        used.push_back(0);
        packs.emplace_back();
      }
      used[k] += lengths[i];
      packs[first_pack + k].push_back(i);
    }
  }
  return packs;
}

std::vector<TrainBatch> pack_samples(std::vector<TrainSample> samples, int64_t pack_length, size_t window) {
  std::vector<int64_t> lengths;
  for (const TrainSample& sample : samples) lengths.push_back(sample.size());
  std::vector<TrainBatch> batches;
  for (const std::vector<size_t>& pack : plan_packs(lengths, pack_length, window)) {
    std::vector<TrainSample> members;
    for (size_t i : pack) members.push_back(std::move(samples[i]));
    batches.push_back(make_batch(std::move(members)));
  }
  return batches;
}

}  // namespace qwen3vl
