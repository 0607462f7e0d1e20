// Decompression bombs: PNG text chunks held to Pillow's limits (MAX_TEXT_CHUNK 1 MiB inflated per chunk,
// MAX_TEXT_MEMORY 64 MiB in all), progressive JPEGs to TurboJPEG's 500-scan limit, and decode_image_file to
// regular files of a bounded size. The bomb files are built here (zlib, libjpeg), nothing large is committed.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <string>

#include "core/error.h"
#include "memory_probe.h"
#include "test_util.h"
#include "vision/image_decode.h"
#include "vision/image_formats.h"

namespace qwen3vl {
namespace {

constexpr int64_t kMiB = 1024 * 1024;

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string png_chunk(const std::string& type, const std::string& body) {
  const std::string typed = type + body;
  const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(typed.data()), static_cast<uInt>(typed.size()));
  return be32(static_cast<uint32_t>(body.size())) + typed + be32(static_cast<uint32_t>(crc));
}

std::string deflate_bytes(const std::string& bytes) {
  uLongf size = compressBound(static_cast<uLong>(bytes.size()));
  std::string out(size, '\0');
  EXPECT_EQ(compress2(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(bytes.data()),
                      static_cast<uLong>(bytes.size()), 9),
            Z_OK);
  out.resize(size);
  return out;
}

// A 1x1 gray PNG whose pixel is 200, with `text_chunks` (full chunks) before IDAT.
std::string png_with_text(const std::string& text_chunks) {
  const std::string ihdr = be32(1) + be32(1) + std::string("\x08\x00\x00\x00\x00", 5);
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + text_chunks +
         png_chunk("IDAT", deflate_bytes(std::string("\x00\xc8", 2))) + png_chunk("IEND", "");
}

std::string ztxt(const std::string& keyword, const std::string& text) {
  return png_chunk("zTXt", keyword + std::string("\0\0", 2) + deflate_bytes(text));
}

std::string compressed_itxt(const std::string& keyword, const std::string& text) {
  return png_chunk("iTXt", keyword + std::string("\0\x01\x00\0\0", 5) + deflate_bytes(text));
}

struct Refusal {
  bool refused = false;
  char message[512] = {0};
};

// Decodes `bytes` in a forked child and reports whether it was refused, with the growth of the child's peak RSS.
testing::ChildPeak<Refusal> decode_in_child(const std::string& bytes) {
  const auto outcome = testing::peak_in_child<Refusal>([&bytes](Refusal& refusal) {
    try {
      decode_image_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "bomb.png");
    } catch (const Error& error) {
      refusal.refused = true;
      std::snprintf(refusal.message, sizeof refusal.message, "%s", error.what());
    }
  });
  EXPECT_TRUE(outcome.reported) << "the child decoding the bomb died";
  return outcome;
}

Image decode(const std::string& bytes, const std::string& name = "image") {
  return decode_image_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name);
}

TEST(ImageBombs, PngWith100MiBOfCompressedTextIsRefusedWithinTheMemoryBound) {
  // 100 zTXt chunks of 1 MiB each (each within MAX_TEXT_CHUNK): a ~100 KB file that libpng alone would inflate
  // and keep in full (1000 chunks x 8 MB allowed).
  const std::string one = ztxt("Comment", std::string(static_cast<size_t>(kMiB), 'a'));
  std::string chunks;
  for (int i = 0; i < 100; ++i) chunks += one;
  const std::string bomb = png_with_text(chunks);
  ASSERT_LT(bomb.size(), size_t{1} << 20);
  const auto outcome = decode_in_child(bomb);
  EXPECT_TRUE(outcome.refused);
  EXPECT_NE(std::string(outcome.message).find("bomb.png: PNG text chunks hold more than 64 MiB"), std::string::npos)
      << outcome.message;
  std::printf("[ memory ] PNG with 100 x 1 MiB zTXt (%zu bytes): refused, peak RSS growth %.1f MiB\n", bomb.size(),
              static_cast<double>(outcome.peak.bytes) / kMiB);
  if (!outcome.peak.measured) GTEST_SKIP() << "no peak-RSS measurement here (/proc/self/clear_refs refused, or a sanitizer heap)";
  EXPECT_LT(outcome.peak.bytes, 64 * kMiB);
}

TEST(ImageBombs, PngTextChunkOverOneMiBInflatedIsRefused) {
  const std::string big(static_cast<size_t>(kMiB) + 1, 'b');
  for (const std::string& chunk : {ztxt("Comment", big), compressed_itxt("XML:com.adobe.xmp", big)}) {
    try {
      decode(png_with_text(chunk), "text.png");
      ADD_FAILURE() << "a text chunk over 1 MiB was accepted";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find("text.png: a PNG " + chunk.substr(4, 4) +
                                               " chunk inflates to more than 1 MiB"),
                std::string::npos)
          << error.what();
    }
  }
}

TEST(ImageBombs, PngWithTextWithinPillowsLimitsDecodes) {
  // Exactly MAX_TEXT_CHUNK inflated, plus plain and uncompressed international text, after IDAT too.
  std::string chunks = ztxt("Comment", std::string(static_cast<size_t>(kMiB), 'c')) +
                       png_chunk("tEXt", std::string("Title\0x", 7)) +
                       png_chunk("iTXt", std::string("Author\0\0\0en\0\0me", 15));
  const Image image = decode(png_with_text(chunks));
  EXPECT_EQ(image.width, 1);
  EXPECT_EQ(image.rgb, (std::vector<uint8_t>{200, 200, 200}));
}

TEST(ImageBombs, PngChunkDeclaringMoreThanTheFileHoldsIsCutBeforeLibpngAllocatesIt) {
  // libpng allocates a chunk's declared length before reading it, even past its own "too large" warning, so the
  // data it sees ends before such a chunk. Cases: a 1.4 GB zTXt declared by the file's last 9 bytes (a fuzz
  // finding, 1.4 GB allocated), by a full header with a little body, and a chunk that fits exactly (not cut).
  const std::string ihdr = be32(1) + be32(1) + std::string("\x08\x00\x00\x00\x00", 5);
  const std::string head = std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr);
  const std::string huge = be32(0x5600000d) + "zTXt";
  const std::string whole = head + png_chunk("tEXt", std::string("Title\0x", 7));
  const std::string name = "cut.png";
  const image_formats::DecodeContext context{name, 0};
  auto readable = [&](const std::string& file) {
    return image_formats::png_readable_size(reinterpret_cast<const uint8_t*>(file.data()), file.size(), context);
  };
  EXPECT_EQ(readable(head + huge + "\x01"), head.size());
  EXPECT_EQ(readable(head + huge + std::string(64, 'z')), head.size());
  EXPECT_EQ(readable(head + "\x00\x00"), head.size());
  EXPECT_EQ(readable(whole), whole.size());
  try {
    decode(head + huge + "\x01", name);
    ADD_FAILURE() << "a PNG cut inside a chunk header decoded";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("cut.png: PNG file is truncated"), std::string::npos) << error.what();
  }
}

// A width x height progressive JPEG (libjpeg's standard progression) with `components` of 1 or 3.
std::string progressive_jpeg(int width, int height, int components) {
  const size_t samples = static_cast<size_t>(width) * components;
  return testing::jpeg_bytes(width, height, components, 75, /*progressive=*/true, [samples](int y, uint8_t* row) {
    for (size_t x = 0; x < samples; ++x) row[x] = static_cast<uint8_t>((x * 7 + static_cast<size_t>(y) * 3) & 0xff);
  });
}

TEST(ImageBombs, JpegWithThousandsOfProgressiveScansIsRefused) {
  const std::string jpeg = progressive_jpeg(64, 64, 1);
  EXPECT_EQ(decode(jpeg).width, 64);
  // The first scan (SOS segment and its entropy-coded data, up to the next marker) repeated 5000 times: libjpeg
  // only warns about a repeated scan and decodes each one again.
  const size_t sos = jpeg.find("\xff\xda");
  ASSERT_NE(sos, std::string::npos);
  size_t end = sos + 2;
  while (end + 1 < jpeg.size() &&
         !(jpeg[end] == '\xff' && jpeg[end + 1] != '\0' && (jpeg[end + 1] < '\xd0' || jpeg[end + 1] > '\xd7')))
    ++end;
  std::string bomb = jpeg.substr(0, sos);
  for (int i = 0; i < 5000; ++i) bomb += jpeg.substr(sos, end - sos);
  bomb += jpeg.substr(end);
  try {
    decode(bomb, "scans.jpg");
    ADD_FAILURE() << "a JPEG with 5000 scans was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("scans.jpg: progressive JPEG with more than 500 scans"),
              std::string::npos)
        << error.what();
  }
}

TEST(ImageBombs, LargeProgressiveJpegStaysWithinLibjpegsMemoryLimit) {
  // The whole-image coefficient buffer of a progressive colour image is what the memory limit must leave room for.
  const Image image = decode(progressive_jpeg(1536, 1024, 3));
  EXPECT_EQ(image.width, 1536);
  EXPECT_EQ(image.height, 1024);
}

TEST(ImageBombs, DecodeImageFileRefusesWhatIsNotARegularFile) {
  for (const char* path : {"/dev/zero", "/dev/null"}) {
    try {
      decode_image_file(path);
      ADD_FAILURE() << path << " was read as an image";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find(std::string(path) + ": not a regular file"), std::string::npos)
          << error.what();
    }
  }
}

}  // namespace
}  // namespace qwen3vl
