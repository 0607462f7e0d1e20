// Training batches in the flattened form of qwen-vl-finetune's FlattenedDataCollatorForSupervisedDataset (Qwen3-VL
// repository, qwen-vl-finetune/qwenvl/data/data_processor.py): the samples of a batch, or of a pack, are
// concatenated into one row; each keeps its own 3-D positions (restarting at 0) and is told apart by cu_seqlens,
// which the attention uses as segments (causal within a segment, nothing across). Images and videos follow in
// sample order. A plain batch of several samples and a packed sequence are the same structure.
//
// Packing chooses which samples share a row: first fit over a window of consecutive samples (each sample goes to
// the first open pack of its window with room; packs keep their samples in dataset order and are emitted in the
// order of their first sample), deterministic, like the official tools/pack_data.py groups samples per chunk of
// items up to a pack length.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/mrope.h"
#include "train/sample_builder.h"

namespace qwen3vl {

struct TrainBatch {
  std::vector<int32_t> input_ids;      // [n]: the samples' ids, concatenated
  // [n], kIgnoreLabel where not supervised; unshifted (label t + 1 supervises the logits of t). The first label of
  // every segment is kIgnoreLabel, so a segment's last token never learns the next segment's first.
  std::vector<int32_t> labels;
  MropePositions positions;            // [n] on T, H, W: each sample's own get_rope_index, restarting at 0
  std::vector<int64_t> cu_seqlens;     // [samples + 1]: 0, n1, n1 + n2, ..., n
  std::vector<ProcessedImage> images;  // every sample's images in sample order (pixel_values, image_grid_thw)
  std::vector<ProcessedVideo> videos;  // every sample's videos in sample order (pixel_values_videos, video_grid_thw)
  std::vector<std::string> sources;    // [samples]: each sample's "FILE:LINE"

  int64_t size() const { return static_cast<int64_t>(input_ids.size()); }
  int64_t segments() const { return static_cast<int64_t>(sources.size()); }
  int64_t supervised_tokens() const { return count_supervised(labels); }
  std::vector<GridTHW> image_grids() const;
  std::vector<GridTHW> video_grids() const;
};

// Concatenates `samples` in order into one row (their pixels are moved, not copied). Throws Error when empty.
TrainBatch make_batch(std::vector<TrainSample> samples);

// Groups samples of the given lengths into packs of at most `pack_length` tokens: first fit within each window of
// `window` consecutive samples (window 0: all samples form one window). A sample longer than pack_length gets a
// pack of its own. Returns the sample indices of each pack, ascending.
std::vector<std::vector<size_t>> plan_packs(const std::vector<int64_t>& lengths, int64_t pack_length, size_t window);

// plan_packs over the samples' lengths, then make_batch per pack.
std::vector<TrainBatch> pack_samples(std::vector<TrainSample> samples, int64_t pack_length, size_t window);

}  // namespace qwen3vl
