// JPEG through libjpeg-turbo with Pillow's decoder settings (JpegDecode.c leaves libjpeg's defaults: ISLOW DCT,
// fancy upsampling, no block smoothing changes), then Pillow's mode conversion to RGB.
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

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

// Each libjpeg call that can fail runs in one of the small *_step functions below: libjpeg reports errors by
// longjmp to the setjmp there, and those frames hold nothing with a destructor, so the jump skips no C++ object.
// A step returns false after an error; the caller throws.
struct ErrorManager {
  jpeg_error_mgr base;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
  bool too_many_scans;
};

ErrorManager& error_manager(j_decompress_ptr cinfo) { return *reinterpret_cast<ErrorManager*>(cinfo->err); }

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

// Each progressive scan is a pass over the whole coefficient buffer, so a small file with thousands of (even
// repeated, which libjpeg only warns about) scans costs minutes of CPU. libjpeg-turbo's TurboJPEG API refuses
// images with more than 500 scans when asked to (TJFLAG_LIMITSCANS, its progress monitor in turbojpeg.c); this
// decoder always applies that limit. Pillow has none.
constexpr int kMaxScans = 500;

void limit_scans(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor || reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number <= kMaxScans) return;
  auto* manager = reinterpret_cast<ErrorManager*>(cinfo->err);
  manager->too_many_scans = true;
  longjmp(manager->jump, 1);
}

// libjpeg's own allocations (the whole-image coefficient buffer of a progressive or multi-scan file: 2 bytes per
// sample, at most 4 components) stay within what the checked header size needs, plus room for tables and row
// buffers. Past it, libjpeg-turbo's memory manager (jmemnobs.c: no backing store) fails the decode.
long libjpeg_memory_limit(int64_t width, int64_t height) {
  const int64_t padded = (width + 32) * (height + 32);
  return static_cast<long>(padded * 4 * 2 + (int64_t{16} << 20));
}

bool read_header_step(j_decompress_ptr cinfo, const uint8_t* data, size_t size) {
  if (setjmp(error_manager(cinfo).jump)) return false;
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
  jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);  // EXIF and XMP
  jpeg_read_header(cinfo, TRUE);
  return true;
}

bool start_step(j_decompress_ptr cinfo) {
  if (setjmp(error_manager(cinfo).jump)) return false;
  jpeg_start_decompress(cinfo);
  return true;
}

// Pillow Convert.c cmyk2rgb (on the Adobe-inverted samples Pillow's "CMYK;I" unpacker produces).
inline uint8_t cmyk_channel(int ink, int black_complement) {
  int tmp = ink * black_complement + 128;
  const int scaled = ((tmp >> 8) + tmp) >> 8;  // MULDIV255
  const int value = black_complement - scaled;
  return static_cast<uint8_t>(value < 0 ? 0 : (value > 255 ? 255 : value));
}

// Decodes every scanline into `rgb` (output_width x output_height x 3) with Pillow's conversion to RGB; `row`
// holds one line of 1 or 4 components. Stops early when libjpeg reports the data truncated.
bool read_rows_step(j_decompress_ptr cinfo, uint8_t* rgb, uint8_t* row) {
  if (setjmp(error_manager(cinfo).jump)) return false;
  const int components = cinfo->output_components;
  const size_t width = cinfo->output_width;
  while (cinfo->output_scanline < cinfo->output_height) {
    uint8_t* out = rgb + static_cast<size_t>(cinfo->output_scanline) * width * 3;
    JSAMPROW rows[1] = {components == 3 ? out : row};
    jpeg_read_scanlines(cinfo, rows, 1);
    if (components == 1) {
      for (size_t x = 0; x < width; ++x) out[x * 3] = out[x * 3 + 1] = out[x * 3 + 2] = row[x];
    } else if (components == 4) {
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
    if (error_manager(cinfo).truncated) break;
  }
  return true;
}

bool finish_step(j_decompress_ptr cinfo) {
  if (setjmp(error_manager(cinfo).jump)) return false;
  jpeg_finish_decompress(cinfo);
  return true;
}

}  // namespace

Decoded decode_jpeg(const uint8_t* data, size_t size, const DecodeContext& context) {
  Decoded decoded;
  struct Decompressor {
    jpeg_decompress_struct cinfo;
    ErrorManager errors;
    jpeg_progress_mgr progress;
    ~Decompressor() { jpeg_destroy_decompress(&cinfo); }  // safe on a zeroed or partly created struct
  } d;
  std::memset(&d.cinfo, 0, sizeof d.cinfo);
  std::memset(&d.errors, 0, sizeof d.errors);
  std::memset(&d.progress, 0, sizeof d.progress);
  jpeg_decompress_struct* cinfo = &d.cinfo;
  cinfo->err = jpeg_std_error(&d.errors.base);
  d.errors.base.error_exit = on_error;
  d.errors.base.emit_message = on_message;
  auto fail = [&]() {
    if (d.errors.too_many_scans)
      throw_error(context.name, ": progressive JPEG with more than ", kMaxScans,
                  " scans (libjpeg-turbo's TJFLAG_LIMITSCANS limit): refused as a decompression bomb");
    throw_error(context.name, ": corrupt JPEG (", d.errors.message, ")");
  };
  if (!read_header_step(cinfo, data, size)) fail();
  d.progress.progress_monitor = limit_scans;
  cinfo->progress = &d.progress;

  for (jpeg_saved_marker_ptr marker = cinfo->marker_list; marker; marker = marker->next) {
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

  const int components = cinfo->num_components;
  if (components != 1 && components != 3 && components != 4)
    throw_error(context.name, ": cannot handle a ", components, "-component JPEG");
  check_dimensions(context, cinfo->image_width, cinfo->image_height);
  cinfo->mem->max_memory_to_use = libjpeg_memory_limit(cinfo->image_width, cinfo->image_height);
  // Pillow's rawmode per layer count: L, RGB, or CMYK;I (4 layers, "assume adobe conventions").
  cinfo->out_color_space = components == 1 ? JCS_GRAYSCALE : (components == 3 ? JCS_RGB : JCS_CMYK);
  if (!start_step(cinfo)) fail();

  Image& image = decoded.image;
  allocate(image, cinfo->output_width, cinfo->output_height);
  std::vector<uint8_t> row(static_cast<size_t>(cinfo->output_width) * cinfo->output_components);
  if (!read_rows_step(cinfo, image.rgb.data(), row.data())) fail();
  if (d.errors.truncated) throw_error(context.name, ": JPEG file is truncated");
  if (!finish_step(cinfo)) fail();
  return decoded;
}

}  // namespace image_formats
}  // namespace qwen3vl
