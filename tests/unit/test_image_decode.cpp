// Image decoding: errors for bad input (each names the file), the explicit input-pixel cap, the aspect-ratio limit,
// EXIF orientation semantics, bytes vs file, and BMP layouts Pillow cannot write (so the goldens cannot cover them).
// Pixel exactness against Pillow is in tests/golden/test_image_preprocess_golden.cpp.
#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "test_util.h"
#include "vision/image_decode.h"
#include "vision/image_processor.h"

namespace qwen3vl {
namespace {

std::string image_path(const std::string& name) { return testing::fixtures_dir() + "/images/" + name; }

// Runs `decode` and checks it throws qwen3vl::Error whose message names `name` and contains `needle`.
template <typename Fn>
void expect_decode_error(Fn decode, const std::string& name, const std::string& needle) {
  try {
    decode();
    ADD_FAILURE() << "no error for " << name;
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(name), std::string::npos) << message;
    EXPECT_NE(message.find(needle), std::string::npos) << "expected \"" << needle << "\" in: " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
  }
}

void expect_file_error(const std::string& path, const std::string& needle) {
  expect_decode_error([&] { decode_image_file(path); }, path, needle);
}

TEST(ImageDecodeErrors, MissingEmptyDirectory) {
  testing::TempDir dir;
  expect_file_error(dir.file("missing.jpg"), "cannot open");
  testing::write_file(dir.file("empty.png"), "");
  expect_file_error(dir.file("empty.png"), "empty image file");
  expect_file_error(dir.path(), "cannot");
}

TEST(ImageDecodeErrors, UnsupportedAndUnrecognisedFormats) {
  testing::TempDir dir;
  testing::write_file(dir.file("a.tif"), std::string("II*\0\x08\0\0\0", 8) + std::string(64, '\0'));
  expect_file_error(dir.file("a.tif"), "unsupported image format TIFF");
  testing::write_file(dir.file("b.tif"), std::string("MM\0*\0\0\0\x08", 8) + std::string(64, '\0'));
  expect_file_error(dir.file("b.tif"), "unsupported image format TIFF");
  std::string random(4096, '\0');
  uint32_t state = 12345;
  for (char& c : random) {
    state = state * 1664525u + 1013904223u;
    c = static_cast<char>(state >> 24);
  }
  random[0] = 'Q';
  testing::write_file(dir.file("random.jpg"), random);  // the extension does not matter, the bytes do
  expect_file_error(dir.file("random.jpg"), "not a recognised image file");
  testing::write_file(dir.file("text.png"), "hello, this is not an image\n");
  expect_file_error(dir.file("text.png"), "not a recognised image file");
}

TEST(ImageDecodeErrors, TruncatedFilesOfEveryFormat) {
  testing::TempDir dir;
  const struct {
    const char* fixture;
    double keep;                                                          // fraction of the file kept
  } cases[] = {{"photo_exif6.jpg", 0.5},  {"over_max_700x500.jpg", 0.3},  // baseline and progressive JPEG
               {"small_80x48.png", 0.5},  {"palette_230x190.gif", 0.5},  {"odd_257x251.webp", 0.5},
               {"bmp24_123x77.bmp", 0.5}, {"bmp_rle8_33x25.bmp", 0.4}};
  for (const auto& c : cases) {
    const std::string bytes = testing::read_file(image_path(c.fixture));
    const std::string path = dir.file(std::string("cut_") + c.fixture);
    testing::write_file(path, bytes.substr(0, static_cast<size_t>(bytes.size() * c.keep)));
    expect_file_error(path, "truncated");
  }
  // Cut inside the headers.
  testing::write_file(dir.file("head.png"), testing::read_file(image_path("small_80x48.png")).substr(0, 20));
  expect_file_error(dir.file("head.png"), "PNG");
  testing::write_file(dir.file("head.jpg"), std::string("\xff\xd8\xff", 3));
  expect_file_error(dir.file("head.jpg"), "JPEG");
  testing::write_file(dir.file("head.bmp"), "BM1234");
  expect_file_error(dir.file("head.bmp"), "truncated");
}

TEST(ImageDecodeErrors, CorruptData) {
  testing::TempDir dir;
  // A JPEG whose header segments are garbage after the SOI marker.
  std::string jpeg = testing::read_file(image_path("photo_exif6.jpg"));
  for (size_t i = 3; i < 200 && i < jpeg.size(); ++i) jpeg[i] = static_cast<char>(0x5a ^ i);
  testing::write_file(dir.file("corrupt.jpg"), jpeg);
  expect_file_error(dir.file("corrupt.jpg"), "corrupt JPEG");
  // A PNG with a damaged IDAT (its CRC no longer matches).
  std::string png = testing::read_file(image_path("small_80x48.png"));
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  png[idat + 40] = static_cast<char>(png[idat + 40] ^ 0xff);
  testing::write_file(dir.file("corrupt.png"), png);
  expect_file_error(dir.file("corrupt.png"), "corrupt PNG");
  // A WebP whose VP8 frame start code is broken (noise in the coded data itself would just decode to noise, as it
  // does in Pillow).
  std::string webp = testing::read_file(image_path("odd_257x251.webp"));
  ASSERT_EQ(webp.substr(12, 4), "VP8 ");
  webp[23] = webp[24] = webp[25] = 0;
  testing::write_file(dir.file("corrupt.webp"), webp);
  expect_file_error(dir.file("corrupt.webp"), "WebP");
  // A BMP with an unknown header size and one with an unsupported depth.
  std::string bmp = testing::read_file(image_path("bmp24_123x77.bmp"));
  std::string bad_header = bmp;
  bad_header[14] = 99;
  testing::write_file(dir.file("header.bmp"), bad_header);
  expect_file_error(dir.file("header.bmp"), "unsupported BMP header");
  std::string bad_depth = bmp;
  bad_depth[28] = 7;
  testing::write_file(dir.file("depth.bmp"), bad_depth);
  expect_file_error(dir.file("depth.bmp"), "unsupported BMP pixel depth");
}

TEST(ImageDecodeErrors, BytesNameTheirSource) {
  const std::string garbage = "definitely not an image";
  expect_decode_error(
      [&] {
        decode_image_bytes(reinterpret_cast<const uint8_t*>(garbage.data()), garbage.size(), "messages[0].content[1]");
      },
      "messages[0].content[1]", "not a recognised image file");
}

TEST(ImageInputLimits, ExplicitPixelCapIsCheckedBeforeDecoding) {
  const std::string path = image_path("over_max_700x500.jpg");  // 350000 pixels
  EXPECT_NO_THROW(decode_image_file(path, 350000));
  expect_decode_error([&] { decode_image_file(path, 349999); }, path, "over the input limit of 349999 pixels");
  // The same cap on every format's header path.
  for (const char* name : {"small_80x48.png", "palette_230x190.gif", "odd_257x251.webp", "bmp24_123x77.bmp"})
    expect_decode_error([&] { decode_image_file(image_path(name), 100); }, name, "over the input limit");
  const Image image = decode_image_file(path);
  EXPECT_NO_THROW(check_image_limits(image, 0));  // 0: no cap
  EXPECT_NO_THROW(check_image_limits(image, 350000));
  expect_decode_error([&] { check_image_limits(image, 1000, "upload.jpg"); }, "upload.jpg", "700x500 = 350000 pixels");
}

TEST(ImageInputLimits, AspectRatioOver200IsAClearError) {
  Image image;
  image.width = 402;
  image.height = 2;
  image.rgb.assign(402 * 2 * 3, 128);
  try {
    preprocess_image(image, ImageProcessorConfig{});
    FAIL() << "expected an error";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("402x2"), std::string::npos) << message;
    EXPECT_NE(message.find("aspect ratio must be smaller than 200, got 201"), std::string::npos) << message;
  }
  image.width = 400;
  image.rgb.assign(400 * 2 * 3, 128);
  EXPECT_NO_THROW(preprocess_image(image, ImageProcessorConfig{}));  // exactly 200 is allowed
}

TEST(ImageDecode, BytesAndFileAgree) {
  const std::string bytes = testing::read_file(image_path("photo_exif6.jpg"));
  const Image a = decode_image_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "photo");
  const Image b = decode_image_file(image_path("photo_exif6.jpg"));
  EXPECT_EQ(a.width, 192);  // stored 256x192, EXIF orientation 6 makes it upright 192x256
  EXPECT_EQ(a.height, 256);
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.height, b.height);
  EXPECT_EQ(a.rgb, b.rgb);
}

TEST(ImageDecode, ExifOrientationIsPillowsTranspose) {
  // A 3x2 image with pixel value = 10*y + x in every channel; expected layouts after Pillow's transposes.
  Image base;
  base.width = 3;
  base.height = 2;
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x)
      for (int c = 0; c < 3; ++c) base.rgb.push_back(static_cast<uint8_t>(10 * y + x));
  const struct {
    int orientation, width, height;
    std::vector<int> values;  // row-major
  } cases[] = {
      {1, 3, 2, {0, 1, 2, 10, 11, 12}}, {2, 3, 2, {2, 1, 0, 12, 11, 10}},  // FLIP_LEFT_RIGHT
      {3, 3, 2, {12, 11, 10, 2, 1, 0}}, {4, 3, 2, {10, 11, 12, 0, 1, 2}},  // ROTATE_180, FLIP_TOP_BOTTOM
      {5, 2, 3, {0, 10, 1, 11, 2, 12}}, {6, 2, 3, {10, 0, 11, 1, 12, 2}},  // TRANSPOSE, ROTATE_270 (cw)
      {7, 2, 3, {12, 2, 11, 1, 10, 0}}, {8, 2, 3, {2, 12, 1, 11, 0, 10}},  // TRANSVERSE, ROTATE_90 (ccw)
      {9, 3, 2, {0, 1, 2, 10, 11, 12}},                                    // not an orientation: unchanged
  };
  for (const auto& c : cases) {
    Image image = base;
    apply_exif_orientation(image, c.orientation);
    ASSERT_EQ(image.width, c.width) << c.orientation;
    ASSERT_EQ(image.height, c.height) << c.orientation;
    for (size_t i = 0; i < c.values.size(); ++i) EXPECT_EQ(image.rgb[i * 3], c.values[i]) << c.orientation << " " << i;
  }
}

// Little-endian helpers for hand-made BMPs.
void put16(std::string& s, uint16_t v) {
  s += static_cast<char>(v & 0xff);
  s += static_cast<char>(v >> 8);
}
void put32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}

std::string bmp16(bool bitfields_565, bool top_down, const std::vector<uint16_t>& pixels, int width, int height) {
  std::string header;
  put32(header, 40);
  put32(header, static_cast<uint32_t>(width));
  put32(header, top_down ? static_cast<uint32_t>(-height) : static_cast<uint32_t>(height));
  put16(header, 1);
  put16(header, 16);
  put32(header, bitfields_565 ? 3 : 0);
  for (int i = 0; i < 5; ++i) put32(header, 0);
  if (bitfields_565) {
    put32(header, 0xF800);
    put32(header, 0x07E0);
    put32(header, 0x001F);
  }
  std::string data;
  const int stride = (width * 2 + 3) / 4 * 4;
  for (int y = 0; y < height; ++y) {
    std::string row;
    for (int x = 0; x < width; ++x) put16(row, pixels[static_cast<size_t>(y * width + x)]);
    row.resize(static_cast<size_t>(stride), '\0');
    data += row;
  }
  std::string file = "BM";
  put32(file, static_cast<uint32_t>(14 + header.size() + data.size()));
  put32(file, 0);
  put32(file, static_cast<uint32_t>(14 + header.size()));
  return file + header + data;
}

TEST(ImageDecode, Bmp16BitLayoutsFollowPillowsUnpackers) {
  // BGR;15 (default 16-bit) and BGR;16 (5-6-5 bitfields): channel * 255 / 31 (or / 63), integer division.
  const std::vector<uint16_t> pixels = {0x7FFF, 0x0000, (17 << 10) | (3 << 5) | 30};
  std::string file = bmp16(false, false, pixels, 3, 1);
  Image image = decode_image_bytes(reinterpret_cast<const uint8_t*>(file.data()), file.size(), "555.bmp");
  EXPECT_EQ(std::vector<uint8_t>(image.rgb.begin(), image.rgb.end()),
            (std::vector<uint8_t>{255, 255, 255, 0, 0, 0, 17 * 255 / 31, 3 * 255 / 31, 30 * 255 / 31}));
  const std::vector<uint16_t> pixels565 = {0xFFFF, (9 << 11) | (40 << 5) | 2, 0, 0x001F};
  file = bmp16(true, true, pixels565, 2, 2);  // top-down rows
  image = decode_image_bytes(reinterpret_cast<const uint8_t*>(file.data()), file.size(), "565.bmp");
  ASSERT_EQ(image.width, 2);
  ASSERT_EQ(image.height, 2);
  EXPECT_EQ(std::vector<uint8_t>(image.rgb.begin(), image.rgb.begin() + 6),
            (std::vector<uint8_t>{255, 255, 255, 9 * 255 / 31, 40 * 255 / 63, 2 * 255 / 31}));
  EXPECT_EQ(image.rgb[9 + 2], 255);  // second row, second pixel: pure blue
}

}  // namespace
}  // namespace qwen3vl
