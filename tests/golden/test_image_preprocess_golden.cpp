// Image decoding and preprocessing against transformers 5.23 (scripts/reference/make_image_goldens.py):
// for every image in tests/fixtures/images, the decoded RGB (load_image + the processor's convert_to_rgb), the
// processor's resized uint8 image, image_grid_thw and the float32 pixel_values must be identical (max abs diff 0).
// Arrays are compared by SHA-256 of their bytes; raw goldens (where committed) and strided samples locate a
// mismatch when there is one.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"
#include "vision/image_decode.h"
#include "vision/image_processor.h"
#include "vision/resize.h"

namespace qwen3vl {
namespace {

std::string golden_dir() { return testing::fixtures_dir() + "/goldens/images"; }
std::string image_dir() { return testing::fixtures_dir() + "/images"; }

// FIPS 180-4 SHA-256, enough to compare arrays with the Python script's hashlib digests.
std::string sha256(const uint8_t* data, size_t size) {
  static const uint32_t k[64] = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
      0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
      0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
      0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
      0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
      0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
      0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
      0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  auto rotr = [](uint32_t x, int n) { return (x >> n) | (x << (32 - n)); };
  auto block = [&](const uint8_t* p) {
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = (uint32_t{p[4 * i]} << 24) | (p[4 * i + 1] << 16) | (p[4 * i + 2] << 8) | p[4 * i + 3];
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
  };
  size_t full = size / 64 * 64;
  for (size_t i = 0; i < full; i += 64) block(data + i);
  uint8_t tail[128] = {0};
  const size_t rest = size - full;
  if (rest > 0) std::memcpy(tail, data + full, rest);  // data may be null when size is 0
  tail[rest] = 0x80;
  const size_t tail_size = rest + 9 <= 64 ? 64 : 128;
  const uint64_t bits = static_cast<uint64_t>(size) * 8;
  for (int i = 0; i < 8; ++i) tail[tail_size - 1 - i] = static_cast<uint8_t>(bits >> (8 * i));
  for (size_t i = 0; i < tail_size; i += 64) block(tail + i);
  std::ostringstream out;
  for (uint32_t v : h) {
    char buffer[9];
    std::snprintf(buffer, sizeof buffer, "%08x", v);
    out << buffer;
  }
  return out.str();
}

TEST(ImageGoldenHelpers, Sha256MatchesKnownDigests) {
  EXPECT_EQ(sha256(nullptr, 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const std::string abc = "abc";
  EXPECT_EQ(sha256(reinterpret_cast<const uint8_t*>(abc.data()), 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks(119, 'x');  // padding spills into a second block
  EXPECT_EQ(sha256(reinterpret_cast<const uint8_t*>(two_blocks.data()), two_blocks.size()),
            "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c");
}

nlohmann::json load_index() {
  std::ifstream in(golden_dir() + "/index.json");
  if (!in) throw std::runtime_error("missing " + golden_dir() + "/index.json");
  return nlohmann::json::parse(in);
}

// Compares an array with its golden entry: hash first; on a mismatch, the raw golden (if committed) gives the exact
// max abs diff and first differing element, otherwise the samples do.
template <typename T>
void expect_array_equal(const std::vector<T>& got, const nlohmann::json& golden, const std::string& what) {
  size_t expected_elements = 1;
  for (const auto& d : golden["shape"]) expected_elements *= d.get<size_t>();
  ASSERT_EQ(got.size(), expected_elements) << what << ": element count";
  const std::string digest = sha256(reinterpret_cast<const uint8_t*>(got.data()), got.size() * sizeof(T));
  if (digest == golden["sha256"].get<std::string>()) return;

  double max_diff = 0;
  size_t differing = 0, first = got.size();
  if (golden.contains("file")) {
    const std::string bytes = testing::read_file(golden_dir() + "/" + golden["file"].get<std::string>());
    ASSERT_EQ(bytes.size(), got.size() * sizeof(T)) << what;
    std::vector<T> expected(got.size());
    std::memcpy(expected.data(), bytes.data(), bytes.size());
    for (size_t i = 0; i < got.size(); ++i) {
      const double diff = std::abs(static_cast<double>(got[i]) - static_cast<double>(expected[i]));
      if (diff != 0 || std::memcmp(&got[i], &expected[i], sizeof(T)) != 0) {
        ++differing;
        if (first == got.size()) first = i;
        max_diff = std::max(max_diff, diff);
      }
    }
    ADD_FAILURE() << what << ": " << differing << " of " << got.size() << " elements differ, max abs diff " << max_diff
                  << ", first at flat index " << first;
    return;
  }
  for (const auto& sample : golden["samples"]) {
    const size_t i = sample[0].get<size_t>();
    const double diff = std::abs(static_cast<double>(got[i]) - sample[1].get<double>());
    if (diff != 0) {
      ++differing;
      max_diff = std::max(max_diff, diff);
    }
  }
  ADD_FAILURE() << what << ": SHA-256 differs from transformers'; " << differing << " of " << golden["samples"].size()
                << " strided samples differ, max abs diff " << max_diff;
}

class ImagePreprocessGolden : public ::testing::TestWithParam<size_t> {};

TEST_P(ImagePreprocessGolden, MatchesTransformersExactly) {
  const nlohmann::json index = load_index();
  const nlohmann::json& c = index["cases"][GetParam()];
  const std::string name = c["name"];
  SCOPED_TRACE(name);

  const Image decoded = decode_image_file(image_dir() + "/" + c["file"].get<std::string>());
  ASSERT_EQ(decoded.width, c["original"]["width"].get<int>());
  ASSERT_EQ(decoded.height, c["original"]["height"].get<int>());
  expect_array_equal(decoded.rgb, c["decoded"], name + " decoded RGB (vs Pillow via load_image)");

  ImageProcessorConfig config;  // the released Qwen3-VL preprocessor_config.json values
  PixelBudget budget;
  if (!c["budget"].is_null()) {
    budget.min_pixels = c["budget"]["min_pixels"].get<int64_t>();
    budget.max_pixels = c["budget"]["max_pixels"].get<int64_t>();
  }
  const ProcessedImage processed = preprocess_image(decoded, config, budget);
  const int resized_w = c["resized"]["width"], resized_h = c["resized"]["height"];
  EXPECT_EQ(processed.resized_width, resized_w);
  EXPECT_EQ(processed.resized_height, resized_h);
  EXPECT_EQ(processed.original_width, decoded.width);
  EXPECT_EQ(processed.original_height, decoded.height);
  EXPECT_EQ(processed.grid.t, c["grid_thw"][0].get<int64_t>());
  EXPECT_EQ(processed.grid.h, c["grid_thw"][1].get<int64_t>());
  EXPECT_EQ(processed.grid.w, c["grid_thw"][2].get<int64_t>());

  // The resized uint8 image on its own, so a mismatch says whether the resize or the normalize/patchify is at fault.
  const Image resized = resize_bicubic_antialias(decoded, resized_w, resized_h);
  expect_array_equal(resized.rgb, c["resized_rgb"], name + " resized uint8 (vs tvF.resize)");
  expect_array_equal(processed.pixel_values, c["pixel_values"], name + " pixel_values");
}

std::vector<size_t> case_indices() {
  std::vector<size_t> indices(load_index()["cases"].size());
  for (size_t i = 0; i < indices.size(); ++i) indices[i] = i;
  return indices;
}

INSTANTIATE_TEST_SUITE_P(Cases, ImagePreprocessGolden, ::testing::ValuesIn(case_indices()),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return load_index()["cases"][info.param]["name"].get<std::string>();
                         });

TEST(ImagePreprocessGolden, IndexRecordsTheProcessorTransformersPicks) {
  const nlohmann::json index = load_index();
  EXPECT_EQ(index["processor_class"], "Qwen2VLImageProcessor");  // the torchvision backend
  EXPECT_EQ(index["preprocessor_config"]["image_processor_type"], "Qwen2VLImageProcessorFast");
  EXPECT_GE(index["cases"].size(), 9u);
}

}  // namespace
}  // namespace qwen3vl
