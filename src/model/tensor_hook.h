// Debug hook shared by the text decoder and the vision encoder: sees named intermediate tensors, [rows, cols]
// floats, so a mismatch against the reference can be traced to its layer. Each model documents its names.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace qwen3vl {

using TensorHook = std::function<void(const std::string& name, const float* data, int64_t rows, int64_t cols)>;

}  // namespace qwen3vl
