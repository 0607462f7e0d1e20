// Internal to src/vision: one decoder per container format, each reproducing Pillow's decode + convert("RGB") for
// that format. image_decode.cpp sniffs the format, calls one of these and applies the EXIF orientation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "vision/image_decode.h"

namespace qwen3vl {
namespace image_formats {

struct DecodeContext {
  const std::string& name;   // for error messages
  int64_t max_input_pixels;  // explicit caller cap (0: none)
};

struct Decoded {
  Image image;
  // Pillow's info["transparency"] as it reaches transformers' convert_to_rgb after convert("RGB"), expressed as the
  // RGB triple that convert("RGBA") treats as transparent (pixels equal to it end up white); absent when none.
  bool has_color_key = false;
  int color_key[3] = {0, 0, 0};
  std::vector<uint8_t> exif;  // TIFF-structured EXIF, possibly prefixed by "Exif\0\0" (as Pillow's info["exif"])
  std::string xmp;            // XMP packet, searched for tiff:Orientation when the EXIF has none
};

// Validates header dimensions before any pixel buffer is allocated: positive, within the caller's cap and within
// Pillow's decompression-bomb limit.
void check_dimensions(const DecodeContext& context, int64_t width, int64_t height);

// Allocates image.rgb for width x height.
void allocate(Image& image, int64_t width, int64_t height);

Decoded decode_jpeg(const uint8_t* data, size_t size, const DecodeContext& context);
Decoded decode_png(const uint8_t* data, size_t size, const DecodeContext& context);
// How many leading bytes of a PNG decode_png hands to libpng: all of them, or up to the first chunk whose declared
// length does not fit the file (libpng allocates that length before reading). Throws when the text chunks are over
// Pillow's limits.
size_t png_readable_size(const uint8_t* data, size_t size, const DecodeContext& context);
Decoded decode_webp(const uint8_t* data, size_t size, const DecodeContext& context);
Decoded decode_gif(const uint8_t* data, size_t size, const DecodeContext& context);
Decoded decode_bmp(const uint8_t* data, size_t size, const DecodeContext& context);

// Pillow's Image.getexif()[Orientation]: IFD0 tag 0x0112 of the EXIF block, else the first tiff:Orientation in the
// XMP packet; 1 when absent or malformed.
int exif_orientation(const std::vector<uint8_t>& exif, const std::string& xmp);

}  // namespace image_formats
}  // namespace qwen3vl
