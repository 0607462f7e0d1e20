#include "model/mrope.h"

#include <algorithm>
#include <cmath>

namespace qwen3vl {

MropePositions text_positions(int64_t start, int64_t count) {
  MropePositions positions;
  for (int64_t i = 0; i < count; ++i) {
    positions.t.push_back(start + i);
    positions.h.push_back(start + i);
    positions.w.push_back(start + i);
  }
  return positions;
}

TextRotary::TextRotary(const TextConfig& config) : head_dim_(config.head_dim) {
  const int64_t half = head_dim_ / 2;
  // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in float32.
  const float base = static_cast<float>(config.rope_theta);
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim_);
    inv_freq_.push_back(1.0f / std::pow(base, exponent));
  }
  // recomposition_frequencies: T everywhere, then H at slice(1, 3*section[1], 3) and W at slice(2, 3*section[2], 3).
  slot_axis_.assign(static_cast<size_t>(half), 0);
  for (int axis = 1; axis <= 2; ++axis) {
    const int64_t end = std::min<int64_t>(3 * config.mrope_section[axis], half);
    for (int64_t i = axis; i < end; i += 3) slot_axis_[i] = axis;
  }
}

void TextRotary::compute(const MropePositions& positions, float* cos, float* sin, Precision precision) const {
  const int64_t half = head_dim_ / 2;
  for (int64_t r = 0; r < positions.size(); ++r) {
    const int64_t by_axis[3] = {positions.t[r], positions.h[r], positions.w[r]};
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(by_axis[slot_axis_[i]]) * inv_freq_[i];
      const float c = round_to(precision, std::cos(angle));
      const float s = round_to(precision, std::sin(angle));
      cos[r * head_dim_ + i] = cos[r * head_dim_ + i + half] = c;
      sin[r * head_dim_ + i] = sin[r * head_dim_ + i + half] = s;
    }
  }
}

}  // namespace qwen3vl
