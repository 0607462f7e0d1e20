#include "model/vision_positions.h"

#include <algorithm>
#include <cmath>

namespace qwen3vl {

std::vector<PatchPosition> patch_positions(const GridTHW& grid, int64_t merge_size) {
  const int64_t m = merge_size;
  std::vector<PatchPosition> positions;
  positions.reserve(static_cast<size_t>(grid.patches()));
  for (int64_t t = 0; t < grid.t; ++t)
    for (int64_t bh = 0; bh < grid.h / m; ++bh)
      for (int64_t bw = 0; bw < grid.w / m; ++bw)
        for (int64_t ih = 0; ih < m; ++ih)
          for (int64_t iw = 0; iw < m; ++iw) positions.push_back(PatchPosition{bh * m + ih, bw * m + iw});
  return positions;
}

AxisTaps pos_embed_axis_taps(int64_t index, int64_t size, int64_t side) {
  // HF: src = index.float() * (side - 1) / clamp(size - 1, min=1), float32 throughout (two roundings; the product
  // is exact for any realistic grid).
  const float scaled = static_cast<float>(index) * static_cast<float>(side - 1);
  const float src = scaled / static_cast<float>(std::max<int64_t>(size - 1, 1));
  const float floor = std::floor(src);
  const float frac = src - floor;  // exact
  AxisTaps taps;
  taps.lo = std::clamp<int64_t>(static_cast<int64_t>(floor), 0, side - 1);
  taps.hi = std::clamp<int64_t>(static_cast<int64_t>(floor) + 1, 0, side - 1);
  // distance = |src - floor - offset| evaluated left to right, weight = clamp(1 - distance, min=0).
  taps.weight_lo = std::max(1.0f - std::fabs(frac - 0.0f), 0.0f);
  taps.weight_hi = std::max(1.0f - std::fabs(frac - 1.0f), 0.0f);
  return taps;
}

std::vector<PosEmbedTaps> pos_embed_taps(const GridTHW& grid, int64_t side, int64_t merge_size) {
  std::vector<PosEmbedTaps> all;
  all.reserve(static_cast<size_t>(grid.patches()));
  for (const PatchPosition& p : patch_positions(grid, merge_size)) {
    const AxisTaps r = pos_embed_axis_taps(p.row, grid.h, side);
    const AxisTaps c = pos_embed_axis_taps(p.col, grid.w, side);
    const int64_t rows[2] = {r.lo, r.hi}, cols[2] = {c.lo, c.hi};
    const float row_w[2] = {r.weight_lo, r.weight_hi}, col_w[2] = {c.weight_lo, c.weight_hi};
    PosEmbedTaps taps;
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 2; ++b) {
        taps.index[a * 2 + b] = rows[a] * side + cols[b];
        taps.weight[a * 2 + b] = row_w[a] * col_w[b];
      }
    all.push_back(taps);
  }
  return all;
}

void interpolate_pos_embed(const WeightMatrix& table, const PosEmbedTaps* taps, int64_t n, float* out,
                           Precision precision) {
  const int64_t dim = table.cols;
  std::vector<float> rows(static_cast<size_t>(4 * dim));
  for (int64_t i = 0; i < n; ++i) {
    int32_t ids[4];
    for (int k = 0; k < 4; ++k) ids[k] = static_cast<int32_t>(taps[i].index[k]);
    ops::embedding(table, ids, 4, rows.data());  // [4, D] table rows, exact in float
    const float* w = taps[i].weight;
    for (int64_t d = 0; d < dim; ++d) {
      // ((p0 + p1) + p2) + p3 of float32 products, the order of torch's sum over the 4-tap dimension.
      float sum = rows[d] * w[0];
      sum += rows[dim + d] * w[1];
      sum += rows[2 * dim + d] * w[2];
      sum += rows[3 * dim + d] * w[3];
      out[i * dim + d] = round_to(precision, sum);
    }
  }
}

VisionRotary::VisionRotary(int64_t head_dim, double theta) : head_dim_(head_dim) {
  // compute_axial_rope_parameters: spatial_dim = head_dim // 2;
  // inv_freq = 1.0 / (base ** (arange(0, spatial_dim, 2, dtype=float) / spatial_dim)), float32.
  const int64_t spatial_dim = head_dim / 2;
  const float base = static_cast<float>(theta);
  for (int64_t i = 0; i < spatial_dim; i += 2)
    inv_freq_.push_back(1.0f / std::pow(base, static_cast<float>(i) / static_cast<float>(spatial_dim)));
}

void VisionRotary::compute(const PatchPosition* positions, int64_t n, float* cos, float* sin) const {
  const int64_t quarter = static_cast<int64_t>(inv_freq_.size());  // head_dim / 4
  const int64_t half = 2 * quarter;
  for (int64_t r = 0; r < n; ++r) {
    float* c = cos + r * head_dim_;
    float* s = sin + r * head_dim_;
    // freqs = position_ids[..., None].float() * inv_freq; recomposition: cat(h, w) then cat(hw, hw).
    for (int64_t j = 0; j < quarter; ++j) {
      const float row_angle = static_cast<float>(positions[r].row) * inv_freq_[j];
      const float col_angle = static_cast<float>(positions[r].col) * inv_freq_[j];
      c[j] = c[j + half] = std::cos(row_angle);
      s[j] = s[j + half] = std::sin(row_angle);
      c[quarter + j] = c[quarter + j + half] = std::cos(col_angle);
      s[quarter + j] = s[quarter + j + half] = std::sin(col_angle);
    }
  }
}

std::vector<int64_t> vision_cu_seqlens(const std::vector<GridTHW>& grids) {
  std::vector<int64_t> cu{0};
  for (const GridTHW& g : grids)
    for (int64_t t = 0; t < g.t; ++t) cu.push_back(cu.back() + g.h * g.w);
  return cu;
}

}  // namespace qwen3vl
