// Shared by the golden tests: a checkpoint opened with its goldens index, and float comparisons.
#pragma once

#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/mrope.h"
#include "model/text_decoder.h"
#include "model/text_weights.h"

namespace qwen3vl {
namespace testing {

// tests/fixtures/models/NAME opened (config + tensors), and the goldens index at tests/fixtures/GOLDEN_DIR.
struct GoldenCheckpoint {
  ModelConfig config;
  TensorStore store;
  nlohmann::json index;
  std::string golden_dir;

  std::vector<float> golden(const std::string& file) const;  // a raw float32 file of the goldens folder
};
void open_golden_checkpoint(const std::string& name, const std::string& golden_dir, GoldenCheckpoint* out);

// A checkpoint's language model bound for golden tests (goldens/NAME).
struct TextCheckpoint : GoldenCheckpoint {
  TextWeights weights;
  std::unique_ptr<TextDecoder> decoder;
};
std::unique_ptr<TextCheckpoint> open_text_checkpoint(const std::string& name);

float max_abs_diff(const float* a, const float* b, size_t count);
float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b);  // also expects equal sizes

// index.json "position_ids": [[T...], [H...], [W...]].
MropePositions positions_of(const nlohmann::json& rows);

}  // namespace testing
}  // namespace qwen3vl
