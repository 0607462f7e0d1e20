// One image format's decoder (vision/image_formats.h) on raw bytes, without the format sniffing: the per-format fuzz
// targets (fuzz_png.cpp, ...) define QWEN3VL_FUZZ_DECODER and include this.
#pragma once

#include "core/error.h"
#include "fuzz_common.h"
#include "vision/image_formats.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string name = "fuzz";
  const qwen3vl::image_formats::DecodeContext context{name, 4'000'000};
  try {
    const qwen3vl::image_formats::Decoded decoded = QWEN3VL_FUZZ_DECODER(data, size, context);
    const qwen3vl::Image& image = decoded.image;
    qwen3vl::fuzz::check(image.width > 0 && image.height > 0 &&
                             image.rgb.size() == size_t(image.width) * size_t(image.height) * 3,
                         "decoded image size");
    qwen3vl::image_formats::exif_orientation(decoded.exif, decoded.xmp);
  } catch (const qwen3vl::Error&) {
  }
  return 0;
}
