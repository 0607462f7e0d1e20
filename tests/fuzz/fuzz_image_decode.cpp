// Request images: decode_image_bytes sniffs the format (JPEG, PNG, WebP, GIF, BMP) and applies the EXIF orientation,
// under a 4-megapixel input cap like the server's. The input is also read as a raw EXIF block and as an XMP packet,
// and the orientation found is applied to a small image.
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
  // Any stored value comes back, as from Pillow's getexif(); values other than 2..8 leave the image as it is.
  const int orientation = qwen3vl::image_formats::exif_orientation(
      std::vector<uint8_t>(data, data + size), std::string(reinterpret_cast<const char*>(data), size));
  qwen3vl::Image image;
  image.width = 3;
  image.height = 2;
  image.rgb.assign(18, 1);
  qwen3vl::apply_exif_orientation(image, orientation);
  qwen3vl::fuzz::check(image.rgb.size() == 18 && image.width * image.height == 6, "orientation keeps the pixels");
  return 0;
}
