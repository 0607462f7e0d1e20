// Request images: decode_image_bytes sniffs the format (JPEG, PNG, WebP, GIF, BMP) and applies the EXIF orientation,
// under a 4-megapixel input cap like the server's. The input is also read as a raw EXIF block and as an XMP packet.
// Run with -rss_limit_mb and -malloc_limit_mb so a decoder that allocates beyond its header's size shows up.
#include "core/error.h"
#include "fuzz_common.h"
#include "vision/image_decode.h"
#include "vision/image_formats.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const qwen3vl::Image image = qwen3vl::decode_image_bytes(data, size, "fuzz", 4'000'000);
    qwen3vl::fuzz::check(image.width > 0 && image.height > 0 &&
                             int64_t{image.width} * image.height <= 4'000'000 &&
                             image.rgb.size() == size_t(image.width) * size_t(image.height) * 3,
                         "decoded image size");
  } catch (const qwen3vl::Error&) {
  }
  const int orientation = qwen3vl::image_formats::exif_orientation(
      std::vector<uint8_t>(data, data + size), std::string(reinterpret_cast<const char*>(data), size));
  qwen3vl::fuzz::check(orientation >= 1 && orientation <= 8, "EXIF orientation in 1..8");
  return 0;
}
