#include "model/rope_index.h"

#include <algorithm>

#include "core/error.h"

namespace qwen3vl {
namespace {

enum class Modality { Text, Image, Video };

// Appends the positions of one vision group (merged grid gh x gw, t = 1) starting at `start`.
void append_vision_group(MropePositions& out, int64_t start, int64_t gh, int64_t gw) {
  for (int64_t row = 0; row < gh; ++row)
    for (int64_t col = 0; col < gw; ++col) {
      out.t.push_back(start);
      out.h.push_back(start + row);
      out.w.push_back(start + col);
    }
}

}  // namespace

RopeIndex get_rope_index(const std::vector<int32_t>& input_ids, const ModelConfig& config,
                         const std::vector<GridTHW>& image_grids, const std::vector<GridTHW>& video_grids) {
  const int64_t merge = config.vision_config.spatial_merge_size;
  // Videos: each temporal slice is its own group with t = 1 (repeat_interleave by t).
  std::vector<GridTHW> slices;
  for (const GridTHW& grid : video_grids)
    for (int64_t t = 0; t < grid.t; ++t) slices.push_back(GridTHW{1, grid.h, grid.w});

  auto modality_of = [&](int32_t id) {
    if (id == config.image_token_id) return Modality::Image;
    if (id == config.video_token_id) return Modality::Video;
    return Modality::Text;
  };
  RopeIndex index;
  int64_t current = 0;
  size_t next_image = 0, next_slice = 0;
  const int64_t n = static_cast<int64_t>(input_ids.size());
  for (int64_t begin = 0; begin < n;) {
    const Modality modality = modality_of(input_ids[begin]);
    int64_t end = begin + 1;
    while (end < n && modality_of(input_ids[end]) == modality) ++end;
    const int64_t length = end - begin;
    if (modality == Modality::Text) {
      for (int64_t k = 0; k < length; ++k) {
        index.positions.t.push_back(current + k);
        index.positions.h.push_back(current + k);
        index.positions.w.push_back(current + k);
      }
      current += length;
    } else {
      const bool image = modality == Modality::Image;
      const std::vector<GridTHW>& grids = image ? image_grids : slices;
      size_t& next = image ? next_image : next_slice;
      if (next >= grids.size())
        throw_error("the prompt has more ", image ? "image" : "video", " placeholders than ",
                    image ? "images" : "video frame groups");
      const GridTHW& grid = grids[next++];
      const int64_t gh = grid.h / merge, gw = grid.w / merge;
      if (grid.t != 1 || gh * gw != length)
        throw_error("a run of ", length, " ", image ? "<|image_pad|>" : "<|video_pad|>", " tokens does not match ",
                    "its grid (", grid.t, ", ", grid.h, ", ", grid.w, ") = ", grid.t * gh * gw, " merged tokens");
      append_vision_group(index.positions, current, gh, gw);
      current += std::max(gh, gw);
    }
    begin = end;
  }
  if (next_image != image_grids.size() || next_slice != slices.size())
    throw_error("the prompt has placeholders for ", next_image, " images and ", next_slice,
                " video frame groups, but ", image_grids.size(), " images and ", slices.size(), " were given");
  int64_t max_position = -1;
  for (int64_t i = 0; i < n; ++i)
    max_position = std::max({max_position, index.positions.t[i], index.positions.h[i], index.positions.w[i]});
  index.rope_delta = max_position + 1 - n;
  return index;
}

}  // namespace qwen3vl
