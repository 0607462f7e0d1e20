#include "engine/vision_prefill.h"

#include <algorithm>

#include "core/error.h"

namespace qwen3vl {
namespace {

// Runs the request's tower: the model's own, or one over the adapter set's weights when it changes the tower.
VisionOutput run_tower(const LoadedModel& model, const AdaptedWeights* adapters, const float* pixels,
                       const std::vector<GridTHW>& grids) {
  if (!adapters || !adapters->touches_vision()) return model.vision->forward(pixels, grids);
  const VisionEncoder tower(model.config, *adapters->vision(), model.vision->context());
  return tower.forward(pixels, grids);
}

}  // namespace

std::vector<std::shared_ptr<const VisionOutput>> encode_images(const LoadedModel& model,
                                                               const std::vector<ProcessedImage>& images,
                                                               const AdaptedWeights* adapters) {
  std::vector<std::shared_ptr<const VisionOutput>> out;
  if (images.empty()) return out;
  if (!model.vision) throw_error(model.dir, ": the checkpoint has no vision tower, but the prompt has images");
  // All images go through the vision tower in one call, each its own attention segment (as HF does).
  std::vector<GridTHW> grids;
  for (const ProcessedImage& image : images) grids.push_back(image.grid);
  // Rows of the tower's patch width (patch_embed's columns): the tower reads that many floats per patch.
  const int64_t row_width = model.vision->patch_dim();
  std::vector<float> pixel_values;
  for (const ProcessedImage& image : images) {
    if (image.grid.patches() <= 0 || static_cast<int64_t>(image.pixel_values.size()) != image.grid.patches() * row_width)
      throw_error("image pixel_values (", image.pixel_values.size(), " values for ", image.grid.patches(),
                  " patches) do not match the vision tower's patch width ", row_width);
    pixel_values.insert(pixel_values.end(), image.pixel_values.begin(), image.pixel_values.end());
  }
  const VisionOutput vision = run_tower(model, adapters, pixel_values.data(), grids);

  const int64_t merge = model.config.vision_config.spatial_merge_size;
  int64_t total_rows = 0;
  for (const GridTHW& grid : grids) total_rows += grid.merged_tokens(merge);
  if (total_rows == 0 || vision.embeds.size() % static_cast<size_t>(total_rows) != 0)
    throw_error("the vision tower returned ", vision.embeds.size(), " values for ", total_rows, " merged tokens");
  const int64_t width = static_cast<int64_t>(vision.embeds.size()) / total_rows;
  int64_t row = 0;
  for (const GridTHW& grid : grids) {
    const int64_t rows = grid.merged_tokens(merge);
    auto piece = std::make_shared<VisionOutput>();
    piece->embeds.assign(vision.embeds.begin() + row * width, vision.embeds.begin() + (row + rows) * width);
    for (const std::vector<float>& level : vision.deepstack)
      piece->deepstack.emplace_back(level.begin() + row * width, level.begin() + (row + rows) * width);
    out.push_back(std::move(piece));
    row += rows;
  }
  return out;
}

std::vector<std::shared_ptr<const VisionOutput>> encode_videos(const LoadedModel& model,
                                                               const std::vector<ProcessedVideo>& videos,
                                                               const AdaptedWeights* adapters) {
  std::vector<std::shared_ptr<const VisionOutput>> out;
  if (videos.empty()) return out;
  if (!model.vision) throw_error(model.dir, ": the checkpoint has no vision tower, but the prompt has videos");
  // All videos in one tower call (each frame pair its own attention segment), as Qwen3VLModel.get_video_features.
  std::vector<GridTHW> grids;
  const int64_t row_width = model.vision->patch_dim();
  int64_t total_patches = 0;
  for (const ProcessedVideo& video : videos) {
    if (video.grid.patches() <= 0 || static_cast<int64_t>(video.pixel_values.size()) != video.grid.patches() * row_width)
      throw_error(video.source, ": video pixel_values do not match its grid");
    grids.push_back(video.grid);
    total_patches += video.grid.patches();
  }
  std::vector<float> joined;
  const float* pixels = videos.front().pixel_values.data();
  if (videos.size() > 1) {  // one video (the common case) is passed without a copy
    joined.reserve(static_cast<size_t>(total_patches * row_width));
    for (const ProcessedVideo& video : videos) joined.insert(joined.end(), video.pixel_values.begin(), video.pixel_values.end());
    pixels = joined.data();
  }
  const VisionOutput vision = run_tower(model, adapters, pixels, grids);
  const int64_t merge = model.config.vision_config.spatial_merge_size;
  int64_t total_rows = 0;
  for (const GridTHW& grid : grids) total_rows += grid.merged_tokens(merge);
  const int64_t width = static_cast<int64_t>(vision.embeds.size()) / total_rows;
  int64_t row = 0;
  for (const GridTHW& grid : grids) {
    const int64_t rows = grid.merged_tokens(merge);
    auto piece = std::make_shared<VisionOutput>();
    piece->embeds.assign(vision.embeds.begin() + row * width, vision.embeds.begin() + (row + rows) * width);
    for (const std::vector<float>& level : vision.deepstack)
      piece->deepstack.emplace_back(level.begin() + row * width, level.begin() + (row + rows) * width);
    out.push_back(std::move(piece));
    row += rows;
  }
  return out;
}

PrefillInputs build_prefill(const LoadedModel& model, const std::vector<int32_t>& input_ids,
                            const std::vector<ProcessedImage>& images,
                            const std::vector<std::shared_ptr<const VisionOutput>>& precomputed,
                            const std::vector<ProcessedVideo>& videos, const AdaptedWeights* adapters) {
  const int64_t hidden = model.config.text_config.hidden_size;
  const int64_t n = static_cast<int64_t>(input_ids.size());
  PrefillInputs prefill;
  prefill.embeds.resize(static_cast<size_t>(n * hidden));
  if (adapters)  // modules_to_save may replace embed_tokens
    TextDecoder(model.config, adapters->text(), model.decoder->context()).embed(input_ids.data(), n, prefill.embeds.data());
  else
    model.decoder->embed(input_ids.data(), n, prefill.embeds.data());

  std::vector<GridTHW> grids, video_grids;
  for (const ProcessedImage& image : images) grids.push_back(image.grid);
  for (const ProcessedVideo& video : videos) video_grids.push_back(video.grid);
  prefill.rope = get_rope_index(input_ids, model.config, grids, video_grids);
  if (images.empty() && videos.empty()) return prefill;
  if (!model.vision)
    throw_error(model.dir, ": the checkpoint has no vision tower, but the prompt has ", images.empty() ? "videos" : "images");
  if (!precomputed.empty() && precomputed.size() != images.size())
    throw_error(precomputed.size(), " precomputed vision outputs for ", images.size(), " images");

  // Images without precomputed features go through the tower together; then every image's rows in order.
  std::vector<std::shared_ptr<const VisionOutput>> features(images.size());
  std::vector<ProcessedImage> to_encode;
  std::vector<size_t> encode_index;
  for (size_t i = 0; i < images.size(); ++i) {
    if (!precomputed.empty() && precomputed[i]) {
      features[i] = precomputed[i];
    } else {
      to_encode.push_back(images[i]);
      encode_index.push_back(i);
    }
  }
  std::vector<std::shared_ptr<const VisionOutput>> encoded = encode_images(model, to_encode, adapters);
  for (size_t k = 0; k < encoded.size(); ++k) features[encode_index[k]] = std::move(encoded[k]);
  // Videos: a tower call of their own, as Qwen3VLModel.get_video_features.
  const std::vector<std::shared_ptr<const VisionOutput>> video_features = encode_videos(model, videos, adapters);

  std::vector<int64_t> image_rows, video_rows;
  for (int64_t row = 0; row < n; ++row) {
    if (input_ids[row] == model.config.image_token_id) image_rows.push_back(row);
    if (input_ids[row] == model.config.video_token_id) video_rows.push_back(row);
    if (input_ids[row] == model.config.image_token_id || input_ids[row] == model.config.video_token_id)
      prefill.visual_rows.push_back(row);
  }
  const int64_t merge = model.config.vision_config.spatial_merge_size;
  auto count_rows = [&](const std::vector<std::shared_ptr<const VisionOutput>>& list, auto grid_of, const char* what) {
    int64_t total = 0;
    for (size_t i = 0; i < list.size(); ++i) {
      const int64_t rows = static_cast<int64_t>(list[i]->embeds.size()) / hidden;
      if (rows * hidden != static_cast<int64_t>(list[i]->embeds.size()) || rows != grid_of(i).merged_tokens(merge))
        throw_error(what, " ", i, ": its vision features do not match its grid");
      total += rows;
    }
    return total;
  };
  const int64_t n_image_features = count_rows(features, [&](size_t i) { return images[i].grid; }, "image");
  const int64_t n_video_features = count_rows(video_features, [&](size_t i) { return videos[i].grid; }, "video");
  if (n_image_features != static_cast<int64_t>(image_rows.size()))
    throw_error("image features and image tokens do not match: ", image_rows.size(), " <|image_pad|> tokens, ",
                n_image_features, " image features");
  if (n_video_features != static_cast<int64_t>(video_rows.size()))
    throw_error("video features and video tokens do not match: ", video_rows.size(), " <|video_pad|> tokens, ",
                n_video_features, " video features");

  // Scatter each modality into its rows (masked_scatter); DeepStack rows are joined in sequence order
  // (Qwen3VLModel.forward's embed_joint over image_mask | video_mask).
  const size_t levels = !features.empty() ? features.front()->deepstack.size() : video_features.front()->deepstack.size();
  using FeatureList = std::vector<std::shared_ptr<const VisionOutput>>;
  for (const FeatureList* list : {static_cast<const FeatureList*>(&features), &video_features})
    for (const auto& feature : *list) {
      if (feature->deepstack.size() != levels) throw_error("precomputed vision outputs differ in DeepStack levels");
      for (const std::vector<float>& level : feature->deepstack)
        if (level.size() != feature->embeds.size())
          throw_error("precomputed DeepStack features do not match the image features");
    }
  const int64_t n_visual = static_cast<int64_t>(prefill.visual_rows.size());
  prefill.deepstack_features.assign(levels, std::vector<float>(static_cast<size_t>(n_visual * hidden)));
  struct Cursor {
    const std::vector<std::shared_ptr<const VisionOutput>>* list;
    size_t item = 0;
    int64_t row = 0;
  };
  Cursor image_cursor{&features}, video_cursor{&video_features};
  for (int64_t k = 0; k < n_visual; ++k) {
    const int64_t row = prefill.visual_rows[static_cast<size_t>(k)];
    Cursor& c = input_ids[row] == model.config.image_token_id ? image_cursor : video_cursor;
    while (static_cast<int64_t>((*c.list)[c.item]->embeds.size()) / hidden == c.row) {
      ++c.item;
      c.row = 0;
    }
    const VisionOutput& feature = *(*c.list)[c.item];
    std::copy_n(feature.embeds.begin() + c.row * hidden, hidden, prefill.embeds.begin() + row * hidden);
    for (size_t level = 0; level < levels; ++level)
      std::copy_n(feature.deepstack[level].begin() + c.row * hidden, hidden,
                  prefill.deepstack_features[level].begin() + k * hidden);
    ++c.row;
  }
  return prefill;
}

}  // namespace qwen3vl
