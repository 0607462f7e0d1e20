#include "engine/vision_prefill.h"

#include <algorithm>

#include "core/error.h"

namespace qwen3vl {

std::vector<std::shared_ptr<const VisionOutput>> encode_images(const LoadedModel& model,
                                                               const std::vector<ProcessedImage>& images) {
  std::vector<std::shared_ptr<const VisionOutput>> out;
  if (images.empty()) return out;
  if (!model.vision) throw_error(model.dir, ": the checkpoint has no vision tower, but the prompt has images");
  // All images go through the vision tower in one call, each its own attention segment (as HF does).
  std::vector<GridTHW> grids;
  for (const ProcessedImage& image : images) grids.push_back(image.grid);
  const int64_t row_width = static_cast<int64_t>(images.front().pixel_values.size()) / images.front().grid.patches();
  std::vector<float> pixel_values;
  for (const ProcessedImage& image : images) {
    if (image.grid.patches() <= 0 || static_cast<int64_t>(image.pixel_values.size()) != image.grid.patches() * row_width)
      throw_error("image pixel_values do not match its grid");
    pixel_values.insert(pixel_values.end(), image.pixel_values.begin(), image.pixel_values.end());
  }
  const VisionOutput vision = model.vision->forward(pixel_values.data(), grids);

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

PrefillInputs build_prefill(const LoadedModel& model, const std::vector<int32_t>& input_ids,
                            const std::vector<ProcessedImage>& images,
                            const std::vector<std::shared_ptr<const VisionOutput>>& precomputed) {
  const int64_t hidden = model.config.text_config.hidden_size;
  const int64_t n = static_cast<int64_t>(input_ids.size());
  PrefillInputs prefill;
  prefill.embeds.resize(static_cast<size_t>(n * hidden));
  model.decoder->embed(input_ids.data(), n, prefill.embeds.data());

  std::vector<GridTHW> grids;
  for (const ProcessedImage& image : images) grids.push_back(image.grid);
  prefill.rope = get_rope_index(input_ids, model.config, grids);
  if (images.empty()) return prefill;
  if (!model.vision) throw_error(model.dir, ": the checkpoint has no vision tower, but the prompt has images");
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
  std::vector<std::shared_ptr<const VisionOutput>> encoded = encode_images(model, to_encode);
  for (size_t k = 0; k < encoded.size(); ++k) features[encode_index[k]] = std::move(encoded[k]);

  for (int64_t row = 0; row < n; ++row)
    if (input_ids[row] == model.config.image_token_id) prefill.visual_rows.push_back(row);
  const int64_t n_visual = static_cast<int64_t>(prefill.visual_rows.size());
  const int64_t merge = model.config.vision_config.spatial_merge_size;
  int64_t n_features = 0;
  for (size_t i = 0; i < features.size(); ++i) {
    const int64_t rows = static_cast<int64_t>(features[i]->embeds.size()) / hidden;
    if (rows * hidden != static_cast<int64_t>(features[i]->embeds.size()) || rows != images[i].grid.merged_tokens(merge))
      throw_error("image ", i, ": its vision features do not match its grid");
    n_features += rows;
  }
  if (n_features != n_visual)
    throw_error("image features and image tokens do not match: ", n_visual, " <|image_pad|> tokens, ", n_features,
                " image features");
  const size_t levels = features.front()->deepstack.size();
  prefill.deepstack_features.assign(levels, {});
  for (auto& level : prefill.deepstack_features) level.reserve(static_cast<size_t>(n_visual * hidden));
  int64_t k = 0;
  for (const auto& feature : features) {
    if (feature->deepstack.size() != levels) throw_error("precomputed vision outputs differ in DeepStack levels");
    const int64_t rows = static_cast<int64_t>(feature->embeds.size()) / hidden;
    for (int64_t r = 0; r < rows; ++r, ++k)
      std::copy_n(feature->embeds.begin() + r * hidden, hidden,
                  prefill.embeds.begin() + prefill.visual_rows[k] * hidden);
    for (size_t level = 0; level < levels; ++level) {
      if (feature->deepstack[level].size() != feature->embeds.size())
        throw_error("precomputed DeepStack features do not match the image features");
      prefill.deepstack_features[level].insert(prefill.deepstack_features[level].end(),
                                               feature->deepstack[level].begin(), feature->deepstack[level].end());
    }
  }
  return prefill;
}

}  // namespace qwen3vl
