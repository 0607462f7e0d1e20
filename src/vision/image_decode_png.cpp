// PNG through libpng, converted to RGB the way Pillow's PngImagePlugin modes (_MODES) convert with .convert("RGB"):
//   gray 1/2/4/8 bit ("1", "L;2", "L;4", "L"): sample scaled to 8 bits (x255, x85, x17) and replicated;
//   gray 16 bit ("I;16"): Pillow's I;16 -> RGB CLIPS the 16-bit value to 255 (it does not take the high byte);
//   RGB / RGBA / LA 16 bit (";16B" unpackers): the high byte; alpha: dropped;
//   palette ("P"): index looked up in PLTE.
// tRNS becomes the colour key that transformers' convert_to_rgb turns white (image_formats.h), following what
// Pillow's chunk_tRNS stores and what convert("RGB") makes of it:
//   "1": 255 or 0 -> (k, 0, 0);  "L": gray g (raw tRNS value) -> (g, g, g);  "I;16": g -> (g, 0, 0);
//   "RGB": (r, g, b) raw values;  "P": only when tRNS has exactly one 0 entry and the rest 255 -> that palette
//   colour (per-entry alpha bytes are dropped with a warning in Pillow).
// Gamma, sRGB, iCCP and cHRM chunks are ignored, as Pillow ignores them.
#include <png.h>

#include <csetjmp>
#include <cstring>

#include "core/error.h"
#include "vision/image_formats.h"

namespace qwen3vl {
namespace image_formats {
namespace {

struct Reader {
  const uint8_t* data;
  size_t size;
  size_t offset;
  char message[256];
  bool truncated;
};

void read_bytes(png_structp png, png_bytep out, png_size_t count) {
  auto* reader = static_cast<Reader*>(png_get_io_ptr(png));
  if (count > reader->size - reader->offset) {
    reader->truncated = true;
    png_error(png, "file is truncated");
  }
  std::memcpy(out, reader->data + reader->offset, count);
  reader->offset += count;
}

void on_error(png_structp png, png_const_charp message) {
  auto* reader = static_cast<Reader*>(png_get_error_ptr(png));
  std::snprintf(reader->message, sizeof reader->message, "%s", message);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}  // benign (ancillary chunk) problems; Pillow ignores them too

// Pillow's PNG text handling: "XML:com.adobe.xmp" (iTXt) is the XMP packet; "Raw profile type exif" (ImageMagick's
// tEXt/zTXt) holds hex EXIF after three header lines, used when there is no eXIf chunk.
void collect_text(png_structp png, png_infop info, Decoded& decoded, std::vector<uint8_t>& raw_profile_exif) {
  png_textp text = nullptr;
  int count = 0;
  png_get_text(png, info, &text, &count);
  for (int i = 0; i < count; ++i) {
    const std::string key = text[i].key ? text[i].key : "";
    const std::string value = text[i].text ? text[i].text : "";
    if (key == "XML:com.adobe.xmp") {
      decoded.xmp = value;
    } else if (key == "Raw profile type exif") {
      size_t pos = 0;
      for (int line = 0; line < 3 && pos != std::string::npos; ++line) {
        pos = value.find('\n', pos);
        if (pos != std::string::npos) ++pos;
      }
      std::vector<uint8_t> bytes;
      int high = -1;
      bool valid = pos != std::string::npos;
      for (size_t k = valid ? pos : value.size(); k < value.size(); ++k) {
        const char c = value[k];
        if (c == '\n' || c == ' ' || c == '\t' || c == '\r') continue;
        const int nibble = (c >= '0' && c <= '9')   ? c - '0'
                           : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                           : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                                    : -1;
        if (nibble < 0) {
          valid = false;
          break;
        }
        if (high < 0) {
          high = nibble;
        } else {
          bytes.push_back(static_cast<uint8_t>(high * 16 + nibble));
          high = -1;
        }
      }
      if (valid && high < 0) raw_profile_exif = std::move(bytes);
    }
  }
}

}  // namespace

Decoded decode_png(const uint8_t* data, size_t size, const DecodeContext& context) {
  Decoded decoded;
  Reader reader{data, size, 0, {0}, false};
  struct Handles {
    png_structp png = nullptr;
    png_infop info = nullptr, end_info = nullptr;
    ~Handles() { png_destroy_read_struct(&png, &info, &end_info); }
  } h;
  h.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, on_error, on_warning);
  if (!h.png) throw_error(context.name, ": out of memory reading PNG");
  h.info = png_create_info_struct(h.png);
  h.end_info = png_create_info_struct(h.png);
  if (!h.info || !h.end_info) throw_error(context.name, ": out of memory reading PNG");
  png_structp png = h.png;
  png_infop info = h.info;
  std::vector<uint8_t> raw;  // rows after libpng's transforms
  std::vector<png_bytep> rows;

  // libpng reports errors by longjmp to here; nothing in this frame needs unwinding at that point except through
  // the exception thrown below (h's destructor frees libpng's state).
  if (setjmp(png_jmpbuf(png))) {
    if (reader.truncated) throw_error(context.name, ": PNG file is truncated");
    throw_error(context.name, ": corrupt PNG (", reader.message, ")");
  }
  png_set_read_fn(png, &reader, read_bytes);
  png_set_crc_action(png, PNG_CRC_DEFAULT, PNG_CRC_WARN_DISCARD);  // bad critical CRC: error; ancillary: skip
  png_read_info(png, info);

  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, nullptr, nullptr);
  check_dimensions(context, width, height);

  // Transforms: 1/2/4-bit gray scaled to 8 bits (as Pillow's "1", "L;2", "L;4" unpackers), palette indices unpacked
  // to one byte, 16-bit colour chopped to the high byte (png_set_strip_16 chops, it does not round), alpha
  // stripped. 16-bit gray stays 16-bit and is clipped below.
  const bool palette_image = color_type == PNG_COLOR_TYPE_PALETTE;
  const bool gray = (color_type & PNG_COLOR_MASK_COLOR) == 0;
  const bool gray16 = color_type == PNG_COLOR_TYPE_GRAY && bit_depth == 16;
  if (gray && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (palette_image && bit_depth < 8) png_set_packing(png);
  if (bit_depth == 16 && !gray16) png_set_strip_16(png);
  if (color_type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);

  png_colorp palette = nullptr;
  int palette_size = 0;
  if (palette_image && !png_get_PLTE(png, info, &palette, &palette_size))
    png_error(png, "palette image without a PLTE chunk");

  const size_t row_bytes = png_get_rowbytes(png, info);
  raw.resize(row_bytes * height);
  rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) rows[y] = &raw[y * row_bytes];
  png_read_image(png, rows.data());

  Image& image = decoded.image;
  allocate(image, width, height);
  for (png_uint_32 y = 0; y < height; ++y) {
    const uint8_t* in = rows[y];
    uint8_t* out = &image.rgb[static_cast<size_t>(y) * width * 3];
    for (png_uint_32 x = 0; x < width; ++x, out += 3) {
      if (gray16) {
        const unsigned value = (unsigned{in[x * 2]} << 8) | in[x * 2 + 1];
        out[0] = out[1] = out[2] = static_cast<uint8_t>(value > 255 ? 255 : value);
      } else if (gray) {
        out[0] = out[1] = out[2] = in[x];
      } else if (palette_image) {
        // Entries past PLTE's length read as black in Pillow's 256-entry palette.
        const int index = in[x];
        const bool known = index < palette_size;
        out[0] = known ? palette[index].red : 0;
        out[1] = known ? palette[index].green : 0;
        out[2] = known ? palette[index].blue : 0;
      } else {
        std::memcpy(out, in + x * 3, 3);
      }
    }
  }
  std::vector<uint8_t>().swap(raw);

  png_bytep trans_alpha = nullptr;
  int trans_count = 0;
  png_color_16p trans_color = nullptr;
  if (png_get_tRNS(png, info, &trans_alpha, &trans_count, &trans_color)) {
    auto set_key = [&](int r, int g, int b) {
      decoded.has_color_key = true;
      decoded.color_key[0] = r;
      decoded.color_key[1] = g;
      decoded.color_key[2] = b;
    };
    if (palette_image) {
      int zero_at = -1;
      bool simple = true;  // Pillow's _simple_palette: ^\xff*\x00\xff*$
      for (int i = 0; i < trans_count && simple; ++i) {
        if (trans_alpha[i] == 0 && zero_at < 0)
          zero_at = i;
        else if (trans_alpha[i] != 255)
          simple = false;
      }
      if (simple && zero_at >= 0) {
        if (zero_at < palette_size)
          set_key(palette[zero_at].red, palette[zero_at].green, palette[zero_at].blue);
        else
          set_key(0, 0, 0);
      }
    } else if (trans_color && color_type == PNG_COLOR_TYPE_GRAY) {
      const int g = trans_color->gray;
      if (bit_depth == 1)
        set_key(g ? 255 : 0, 0, 0);
      else if (bit_depth == 16)
        set_key(g, 0, 0);
      else
        set_key(g, g, g);
    } else if (trans_color && color_type == PNG_COLOR_TYPE_RGB) {
      set_key(trans_color->red, trans_color->green, trans_color->blue);
    }
  }

  // Chunks after IDAT (eXIf, text) are read like Pillow's load_end, which stops quietly at damage there.
  if (setjmp(png_jmpbuf(png)) == 0) png_read_end(png, h.end_info);

  std::vector<uint8_t> raw_profile_exif;
  for (png_infop chunks : {info, h.end_info}) {
    collect_text(png, chunks, decoded, raw_profile_exif);
    png_bytep exif = nullptr;
    png_uint_32 exif_size = 0;
    if (png_get_eXIf_1(png, chunks, &exif_size, &exif) && exif_size > 0) decoded.exif.assign(exif, exif + exif_size);
  }
  if (decoded.exif.empty()) decoded.exif = std::move(raw_profile_exif);
  return decoded;
}

}  // namespace image_formats
}  // namespace qwen3vl
