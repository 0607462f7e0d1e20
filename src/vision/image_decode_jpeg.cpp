// JPEG through libjpeg-turbo with Pillow's decoder settings (JpegDecode.c leaves libjpeg's defaults: ISLOW DCT,
// fancy upsampling, no block smoothing changes), then Pillow's mode conversion to RGB.
#include <csetjmp>
#include <cstdio>
#include <cstring>

// jpeglib.h needs size_t and FILE declared before it; jerror.h after it.
#include <jpeglib.h>
// clang-format off
#include <jerror.h>
// clang-format on

#include "core/error.h"
#include "vision/image_formats.h"

namespace qwen3vl {
namespace image_formats {
namespace {

struct ErrorManager {
  jpeg_error_mgr base;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

[[noreturn]] void on_error(j_common_ptr cinfo) {
  auto* manager = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, manager->message);
  longjmp(manager->jump, 1);
}

void on_message(j_common_ptr cinfo, int level) {
  // Pillow ignores libjpeg's warnings (corrupt-data notices), except that running out of data is
  // "image file is truncated" there. libjpeg reports that as the JWRN_JPEG_EOF warning and pads with gray.
  auto* manager = reinterpret_cast<ErrorManager*>(cinfo->err);
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) manager->truncated = true;
}

// Pillow Convert.c cmyk2rgb (on the Adobe-inverted samples Pillow's "CMYK;I" unpacker produces).
inline uint8_t cmyk_channel(int ink, int black_complement) {
  int tmp = ink * black_complement + 128;
  const int scaled = ((tmp >> 8) + tmp) >> 8;  // MULDIV255
  const int value = black_complement - scaled;
  return static_cast<uint8_t>(value < 0 ? 0 : (value > 255 ? 255 : value));
}

}  // namespace

Decoded decode_jpeg(const uint8_t* data, size_t size, const DecodeContext& context) {
  Decoded decoded;
  jpeg_decompress_struct cinfo;
  ErrorManager errors;
  std::memset(&errors, 0, sizeof errors);
  cinfo.err = jpeg_std_error(&errors.base);
  errors.base.error_exit = on_error;
  errors.base.emit_message = on_message;
  // Objects touched after setjmp live in memory (not registers) because libjpeg calls them through pointers or
  // they are only destroyed after the jump, so the longjmp back into this frame leaves them valid.
  std::vector<uint8_t> row;

  if (setjmp(errors.jump)) {
    jpeg_destroy_decompress(&cinfo);
    throw_error(context.name, ": corrupt JPEG (", errors.message, ")");
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);  // EXIF and XMP
  jpeg_read_header(&cinfo, TRUE);

  for (jpeg_saved_marker_ptr marker = cinfo.marker_list; marker; marker = marker->next) {
    const uint8_t* payload = marker->data;
    const size_t length = marker->data_length;
    static const char kXmp[] = "http://ns.adobe.com/xap/1.0/";  // followed by a NUL
    if (length >= 6 && std::memcmp(payload, "Exif\0\0", 6) == 0) {
      // Pillow concatenates several Exif segments, dropping the later ones' "Exif\0\0" prefix.
      if (decoded.exif.empty())
        decoded.exif.assign(payload, payload + length);
      else
        decoded.exif.insert(decoded.exif.end(), payload + 6, payload + length);
    } else if (length >= sizeof kXmp && std::memcmp(payload, kXmp, sizeof kXmp) == 0) {
      decoded.xmp.assign(reinterpret_cast<const char*>(payload) + sizeof kXmp, length - sizeof kXmp);
    }
  }

  const int components = cinfo.num_components;
  if (components != 1 && components != 3 && components != 4) {
    jpeg_destroy_decompress(&cinfo);
    throw_error(context.name, ": cannot handle a ", components, "-component JPEG");
  }
  try {
    check_dimensions(context, cinfo.image_width, cinfo.image_height);
  } catch (...) {
    jpeg_destroy_decompress(&cinfo);
    throw;
  }
  // Pillow's rawmode per layer count: L, RGB, or CMYK;I (4 layers, "assume adobe conventions").
  cinfo.out_color_space = components == 1 ? JCS_GRAYSCALE : (components == 3 ? JCS_RGB : JCS_CMYK);
  jpeg_start_decompress(&cinfo);

  Image& image = decoded.image;
  allocate(image, cinfo.output_width, cinfo.output_height);
  row.resize(static_cast<size_t>(cinfo.output_width) * cinfo.output_components);
  const size_t width = cinfo.output_width;
  while (cinfo.output_scanline < cinfo.output_height) {
    const size_t y = cinfo.output_scanline;
    uint8_t* out = &image.rgb[y * width * 3];
    if (components == 3) {
      JSAMPROW rows[1] = {out};
      jpeg_read_scanlines(&cinfo, rows, 1);
      continue;
    }
    JSAMPROW rows[1] = {row.data()};
    jpeg_read_scanlines(&cinfo, rows, 1);
    if (components == 1) {
      for (size_t x = 0; x < width; ++x) out[x * 3] = out[x * 3 + 1] = out[x * 3 + 2] = row[x];
    } else {
      for (size_t x = 0; x < width; ++x) {
        // "CMYK;I" inverts every stored sample (c = 255 - stored); cmyk2rgb then uses nk = 255 - k, which is the
        // stored black sample itself.
        const int c = 255 - row[x * 4], m = 255 - row[x * 4 + 1], ye = 255 - row[x * 4 + 2];
        const int black_complement = row[x * 4 + 3];
        out[x * 3 + 0] = cmyk_channel(c, black_complement);
        out[x * 3 + 1] = cmyk_channel(m, black_complement);
        out[x * 3 + 2] = cmyk_channel(ye, black_complement);
      }
    }
    if (errors.truncated) break;
  }
  const bool truncated = errors.truncated;
  if (!truncated) jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (truncated) throw_error(context.name, ": JPEG file is truncated");
  return decoded;
}

}  // namespace image_formats
}  // namespace qwen3vl
