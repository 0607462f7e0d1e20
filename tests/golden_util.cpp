#include "golden_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "test_util.h"

namespace qwen3vl {
namespace testing {

std::vector<float> GoldenCheckpoint::golden(const std::string& file) const { return read_f32(golden_dir + "/" + file); }

void open_golden_checkpoint(const std::string& name, const std::string& golden_dir, GoldenCheckpoint* out) {
  const std::string dir = model_fixture(name);
  out->config = load_model_config(dir + "/config.json");
  out->store = TensorStore::open_dir(dir);
  out->golden_dir = fixtures_dir() + "/" + golden_dir;
  out->index = nlohmann::json::parse(read_file(out->golden_dir + "/index.json"));
}

std::unique_ptr<TextCheckpoint> open_text_checkpoint(const std::string& name) {
  auto c = std::make_unique<TextCheckpoint>();
  open_golden_checkpoint(name, "goldens/" + name, c.get());
  c->weights = bind_text_weights(c->store, c->config);
  c->decoder = std::make_unique<TextDecoder>(c->config, c->weights);
  return c;
}

float max_abs_diff(const float* a, const float* b, size_t count) {
  float worst = 0.f;
  for (size_t i = 0; i < count; ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  return max_abs_diff(a.data(), b.data(), std::min(a.size(), b.size()));
}

MropePositions positions_of(const nlohmann::json& rows) {
  MropePositions p;
  p.t = rows[0].get<std::vector<int64_t>>();
  p.h = rows[1].get<std::vector<int64_t>>();
  p.w = rows[2].get<std::vector<int64_t>>();
  return p;
}

}  // namespace testing
}  // namespace qwen3vl
