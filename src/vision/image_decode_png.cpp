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
#include <zlib.h>

#include <csetjmp>
#include <cstring>
#include <new>
#include <string>
#include <vector>

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


// Pillow's limits on PNG text (PngImagePlugin): MAX_TEXT_CHUNK, ImageFile.SAFEBLOCK = 1 MiB, for what one zTXt or
// iTXt chunk inflates to (_safe_zlib_decompress), and MAX_TEXT_MEMORY = 64 MiB for all text chunks together
// (check_text_memory). Pillow refuses the image past either; so does this decoder, before libpng inflates
// anything. libpng alone would keep up to 1000 text chunks (PNG_USER_CHUNK_CACHE_MAX) of up to 8 MB inflated each
// (PNG_USER_CHUNK_MALLOC_MAX, which is also its zTXt/iTXt inflate limit): about 8 GB from a file of a few MB.
constexpr size_t kMaxTextChunkBytes = size_t{1} << 20;
constexpr size_t kMaxTextMemoryBytes = size_t{64} << 20;

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// What a zlib stream inflates to, counted through a small scratch buffer and only up to just past `limit`; damage
// ends the count (Pillow then keeps no text at all, so this counts at least as much as Pillow does).
size_t inflated_size(const uint8_t* compressed, size_t size, size_t limit) {
  z_stream stream{};
  if (inflateInit(&stream) != Z_OK) throw std::bad_alloc();
  stream.next_in = const_cast<Bytef*>(compressed);
  stream.avail_in = static_cast<uInt>(size);  // a chunk is under 2^31 bytes
  Bytef scratch[1 << 14];
  size_t total = 0;
  int rc = Z_OK;
  while (rc == Z_OK && total <= limit) {
    stream.next_out = scratch;
    stream.avail_out = sizeof scratch;
    rc = inflate(&stream, Z_NO_FLUSH);
    total += sizeof scratch - stream.avail_out;
  }
  inflateEnd(&stream);
  return total;
}

// Offset just past the first NUL in [from, size), or size when there is none.
size_t after_nul(const uint8_t* body, size_t from, size_t size) {
  const void* nul = from < size ? std::memchr(body + from, 0, size - from) : nullptr;
  return nul ? static_cast<size_t>(static_cast<const uint8_t*>(nul) - body) + 1 : size;
}

// The text bytes one tEXt / zTXt / iTXt chunk holds once inflated (layouts from the PNG specification, 11.3.4).
size_t text_chunk_size(const uint8_t* type, const uint8_t* body, size_t length) {
  if (std::memcmp(type, "tEXt", 4) == 0) return length;
  if (std::memcmp(type, "zTXt", 4) == 0) {
    const size_t text = after_nul(body, 0, length) + 1;  // keyword, NUL, compression method
    return text < length ? inflated_size(body + text, length - text, kMaxTextChunkBytes) : 0;
  }
  if (std::memcmp(type, "iTXt", 4) == 0) {
    const size_t flag = after_nul(body, 0, length);  // keyword, NUL, then flag and method bytes
    if (flag + 2 > length) return length;
    const size_t text = after_nul(body, after_nul(body, flag + 2, length), length);  // language, translated keyword
    if (body[flag] == 0) return length;
    return text < length ? inflated_size(body + text, length - text, kMaxTextChunkBytes) : 0;
  }
  return 0;
}

// libpng reports errors by longjmp to the last setjmp on png_jmpbuf. Every libpng call that can fail runs in one of
// these small steps, whose frames hold nothing with a destructor: the jump skips no C++ object, and the caller
// throws once the step has returned false (reader.message says why).
bool read_info_step(png_structp png, png_infop info) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_info(png, info);
  return true;
}

// Transforms: 1/2/4-bit gray scaled to 8 bits (as Pillow's "1", "L;2", "L;4" unpackers), palette indices unpacked
// to one byte, 16-bit colour chopped to the high byte (png_set_strip_16 chops, it does not round), alpha stripped.
// 16-bit gray stays 16-bit and is clipped by the caller.
bool transform_step(png_structp png, png_infop info, int bit_depth, int color_type) {
  if (setjmp(png_jmpbuf(png))) return false;
  const bool gray = (color_type & PNG_COLOR_MASK_COLOR) == 0;
  if (gray && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (color_type == PNG_COLOR_TYPE_PALETTE && bit_depth < 8) png_set_packing(png);
  if (bit_depth == 16 && color_type != PNG_COLOR_TYPE_GRAY) png_set_strip_16(png);
  if (color_type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  return true;
}

bool read_rows_step(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  return true;
}

// Chunks after IDAT (eXIf, text) are read like Pillow's load_end, which stops quietly at damage there.
void read_end_step(png_structp png, png_infop end_info) {
  if (setjmp(png_jmpbuf(png))) return;
  png_read_end(png, end_info);
}

}  // namespace

// Walks the chunk list and refuses the image when its text is over Pillow's limits. Returns how many bytes libpng
// may read: a chunk that does not fit the file, header and CRC included, ends the walk and the data there, since
// libpng allocates a chunk's declared length before reading it, even after warning that it is too large (a 100-byte
// file declaring a 1 GB iTXt chunk got 1 GB; a 413-byte one ending in 9 bytes of zTXt header declaring 1.4 GB got
// 1.4 GB); it then meets the end of the data at that chunk's header, the same damage it would have found there.
size_t png_readable_size(const uint8_t* data, size_t size, const DecodeContext& context) {
  size_t total = 0;
  for (size_t at = 8; at < size;) {
    if (size - at < 12) return at;  // a header cut short declares a length the file cannot hold either
    const uint32_t length = read_be32(data + at);
    if (length > size - at - 12) return at;
    const uint8_t* type = data + at + 4;
    if (std::memcmp(type, "IEND", 4) == 0) break;
    const size_t text = text_chunk_size(type, data + at + 8, length);
    if (text > kMaxTextChunkBytes && std::memcmp(type, "tEXt", 4) != 0)
      throw_error(context.name, ": a PNG ", std::string(reinterpret_cast<const char*>(type), 4),
                  " chunk inflates to more than 1 MiB (Pillow's MAX_TEXT_CHUNK): refused as a decompression bomb");
    total += text;
    if (total > kMaxTextMemoryBytes)
      throw_error(context.name, ": PNG text chunks hold more than 64 MiB (Pillow's MAX_TEXT_MEMORY): refused as a "
                  "decompression bomb");
    at += size_t{12} + length;
  }
  return size;
}

Decoded decode_png(const uint8_t* data, size_t size, const DecodeContext& context) {
  const size_t readable = png_readable_size(data, size, context);
  Decoded decoded;
  Reader reader{data, readable, 0, {0}, false};
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
  png_set_read_fn(png, &reader, read_bytes);
  png_set_crc_action(png, PNG_CRC_DEFAULT, PNG_CRC_WARN_DISCARD);  // bad critical CRC: error; ancillary: skip
  auto fail = [&]() {
    if (reader.truncated) throw_error(context.name, ": PNG file is truncated");
    throw_error(context.name, ": corrupt PNG (", reader.message, ")");
  };
  if (!read_info_step(png, info)) fail();

  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
  png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, nullptr, nullptr);
  check_dimensions(context, width, height);
  const bool palette_image = color_type == PNG_COLOR_TYPE_PALETTE;
  const bool gray = (color_type & PNG_COLOR_MASK_COLOR) == 0;
  const bool gray16 = color_type == PNG_COLOR_TYPE_GRAY && bit_depth == 16;
  if (!transform_step(png, info, bit_depth, color_type)) fail();

  png_colorp palette = nullptr;
  int palette_size = 0;
  if (palette_image && !png_get_PLTE(png, info, &palette, &palette_size))
    throw_error(context.name, ": corrupt PNG (palette image without a PLTE chunk)");

  const size_t row_bytes = png_get_rowbytes(png, info);
  std::vector<uint8_t> raw(row_bytes * height);  // rows after libpng's transforms
  std::vector<png_bytep> rows(height);
  for (png_uint_32 y = 0; y < height; ++y) rows[y] = &raw[y * row_bytes];
  if (!read_rows_step(png, rows.data())) fail();

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

  read_end_step(png, h.end_info);

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
