// Image input: JPEG, PNG, WebP, BMP and GIF (first frame) decoded to RGB8 exactly as transformers 5.x loads an image
// given by path, URL or base64 (`transformers.image_utils.load_image`: Pillow `Image.open`, then
// `ImageOps.exif_transpose`, then `.convert("RGB")`).
//
// What that means per mode (all checked against Pillow 13 by tests/golden/test_image_preprocess_golden.cpp):
// - JPEG: libjpeg-turbo with Pillow's settings (ISLOW DCT, fancy upsampling); 4-component JPEGs are read as Adobe
//   inverted CMYK and converted with Pillow's cmyk2rgb. A truncated JPEG is an error (Pillow: "image file is
//   truncated"); libjpeg's other warnings are ignored, as in Pillow.
// - an alpha channel (RGBA, LA, palette with per-entry tRNS alpha) is DROPPED, not composited: `convert("RGB")`
//   ignores it. A single transparent colour, though, survives convert("RGB") as info["transparency"] (GIF
//   transparent index, PNG tRNS colour key or single fully transparent palette entry), and the processor's
//   convert_to_rgb then composites it on white: every pixel of that colour becomes (255, 255, 255). Reproduced,
//   including Pillow's quirk that an integer key on an RGB image (from 1-bit and 16-bit gray PNGs) means (k, 0, 0).
//   transformers' other path loader (processor(images=path): torchvision `decode_image(mode=RGB)`) shows the
//   palette colour there instead, cannot read BMP and keeps 16-bit PNGs as uint16; an in-memory PIL RGBA image
//   handed to the processor is composited on white, and qwen-vl-utils composites RGBA on white too. Those routes
//   are not reproduced.
// - grayscale is replicated; 16-bit grayscale PNG (Pillow mode I;16) is CLIPPED to 255 by Pillow's I;16->RGB
//   conversion (not scaled); 16-bit RGB(A)/LA PNGs keep the high byte (Pillow's ;16B unpackers).
// - EXIF orientation 2..8 (JPEG APP1, PNG eXIf / "Raw profile type exif", WebP EXIF chunk, else XMP
//   tiff:Orientation) is applied like Pillow's exif_transpose.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace qwen3vl {

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // RGB8, row-major, interleaved, width*height*3 bytes
};

// Pillow's decompression-bomb limit (2 * Image.MAX_IMAGE_PIXELS): larger images are refused there, and here.
constexpr int64_t kDecodeHardPixelLimit = 178956970;

// The largest file decode_image_file reads: more than any image within the pixel limit needs (an uncompressed
// 32-bit BMP at kDecodeHardPixelLimit is 716 MB).
constexpr uint64_t kMaxImageFileBytes = uint64_t{1} << 30;

// Decodes a file / a byte buffer. Errors (qwen3vl::Error) name the file (or name_for_errors) and say what is wrong:
// missing, not a regular file, empty, truncated, corrupt, unsupported format (TIFF, ...), too large. max_input_pixels
// > 0 is an explicit cap on the INPUT size (e.g. a server limit), checked from the header before any pixel buffer
// exists.
Image decode_image_file(const std::string& path, int64_t max_input_pixels = 0);
Image decode_image_bytes(const uint8_t* data, size_t size, const std::string& name_for_errors,
                         int64_t max_input_pixels = 0);

// Throws a clear Error when width*height exceeds max_input_pixels (> 0). For images that were decoded elsewhere;
// decode_* take the same cap and apply it before decoding.
void check_image_limits(const Image& image, int64_t max_input_pixels, const std::string& name_for_errors = "image");

// Pillow's Image.transpose for EXIF orientation 2..8 (1 or anything else: unchanged). Exposed for the unit tests.
void apply_exif_orientation(Image& image, int orientation);

}  // namespace qwen3vl
