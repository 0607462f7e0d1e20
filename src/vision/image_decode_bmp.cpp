// BMP, written from Pillow's BmpImagePlugin (no library needed): BITMAPCOREHEADER and INFO/V2..V5 headers;
// 1/4/8-bit palette (raw, RLE8, RLE4), 16-bit (5-5-5, or 5-6-5 bitfields), 24-bit, 32-bit (BGRX, or the bitfield
// layouts Pillow accepts). Pixel rules follow Pillow's unpackers (BGR;15 / BGR;16 scale with v * 255 / 31 and
// v * 255 / 63, integer division); alpha is dropped as convert("RGB") drops it.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "vision/image_formats.h"

namespace qwen3vl {
namespace image_formats {
namespace {

uint32_t u32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (uint32_t{p[3]} << 24); }
uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

// The 32-bit layouts Pillow maps to a rawmode, as byte positions of R, G, B in the little-endian pixel.
struct Layout32 {
  uint32_t r, g, b, a;
  int r_byte, g_byte, b_byte;
};
const Layout32 kLayouts32[] = {
    {0xFF0000, 0xFF00, 0xFF, 0x0, 2, 1, 0},         // BGRX
    {0xFF000000, 0xFF0000, 0xFF00, 0x0, 3, 2, 1},   // XBGR
    {0xFF000000, 0xFF00, 0xFF, 0x0, 3, 1, 0},       // BGXR
    {0xFF000000, 0xFF0000, 0xFF00, 0xFF, 3, 2, 1},  // ABGR
    {0xFF, 0xFF00, 0xFF0000, 0xFF000000, 0, 1, 2},  // RGBA
    {0xFF0000, 0xFF00, 0xFF, 0xFF000000, 2, 1, 0},  // BGRA
    {0xFF000000, 0xFF00, 0xFF, 0xFF0000, 3, 1, 0},  // BGAR
    {0x0, 0x0, 0x0, 0x0, 2, 1, 0},                  // all-zero masks: BGRA
};

}  // namespace

Decoded decode_bmp(const uint8_t* data, size_t size, const DecodeContext& context) {
  const std::string& name = context.name;
  if (size < 18) throw_error(name, ": BMP file is truncated (header)");
  const uint32_t data_offset = u32(data + 10);
  const uint32_t header_size = u32(data + 14);
  if (size < 14 + static_cast<size_t>(header_size)) throw_error(name, ": BMP file is truncated (header)");
  const uint8_t* h = data + 18;  // header after its size field

  int64_t width = 0, height = 0;
  int bits = 0;
  uint32_t compression = 0, colors = 0;
  int palette_entry = 4;
  bool top_down = false;
  uint32_t masks[4] = {0, 0, 0, 0};
  bool have_masks = false;
  if (header_size == 12) {
    width = u16(h);
    height = u16(h + 2);
    bits = u16(h + 6);
    palette_entry = 3;
  } else if (header_size == 40 || header_size == 52 || header_size == 56 || header_size == 64 || header_size == 108 ||
             header_size == 124) {
    top_down = h[7] == 0xFF;  // Pillow's test: the top byte of a negative height
    width = static_cast<int32_t>(u32(h));
    height = top_down ? (int64_t{1} << 32) - u32(h + 4) : int64_t{u32(h + 4)};
    bits = u16(h + 10);
    compression = u32(h + 12);
    colors = u32(h + 28);
    if (compression == 3) {
      have_masks = true;
      if (header_size - 4 >= 48) {
        for (int i = 0; i < 3; ++i) masks[i] = u32(h + 36 + i * 4);
        if (header_size - 4 >= 52) masks[3] = u32(h + 48);
      } else {
        // A 40-byte header keeps the three masks right after it.
        if (size < 14 + header_size + 12) throw_error(name, ": BMP file is truncated (bitfield masks)");
        for (int i = 0; i < 3; ++i) masks[i] = u32(data + 14 + header_size + i * 4);
      }
    }
  } else {
    throw_error(name, ": unsupported BMP header type (", header_size, ")");
  }
  if (width <= 0 || height <= 0) throw_error(name, ": BMP has invalid size ", width, "x", height);
  if (bits != 1 && bits != 4 && bits != 8 && bits != 16 && bits != 24 && bits != 32)
    throw_error(name, ": unsupported BMP pixel depth (", bits, ")");
  if (colors == 0) colors = bits < 32 ? uint32_t{1} << bits : 0;

  // Channel extraction for 16/24/32-bit pixels.
  bool bgr565 = false;
  const Layout32* layout32 = &kLayouts32[0];
  if (compression == 3) {
    bool ok = false;
    if (bits == 32) {
      for (const Layout32& l : kLayouts32)
        if (l.r == masks[0] && l.g == masks[1] && l.b == masks[2] && l.a == masks[3]) {
          layout32 = &l;
          ok = true;
          break;
        }
    } else if (bits == 24) {
      ok = masks[0] == 0xFF0000 && masks[1] == 0xFF00 && masks[2] == 0xFF;
    } else if (bits == 16) {
      bgr565 = masks[0] == 0xF800 && masks[1] == 0x7E0 && masks[2] == 0x1F;
      ok = bgr565 || (masks[0] == 0x7C00 && masks[1] == 0x3E0 && masks[2] == 0x1F);
    }
    if (!ok) throw_error(name, ": unsupported BMP bitfields layout");
  } else if (compression != 0 && compression != 1 && compression != 2) {
    throw_error(name, ": unsupported BMP compression (", compression, ")");
  }
  (void)have_masks;
  const bool rle = compression == 1 || compression == 2;
  if (rle && bits != (compression == 1 ? 8 : 4)) throw_error(name, ": BMP RLE compression with ", bits, "-bit pixels");
  check_dimensions(context, width, height);

  // Palette right after the header (plus masks); Pillow reads `colors` entries there.
  std::vector<uint8_t> palette(256 * 3, 0);
  size_t offset = data_offset;
  if (bits <= 8) {
    if (colors == 0 || colors > 65536) throw_error(name, ": unsupported BMP palette size (", colors, ")");
    const size_t palette_start = 14 + header_size;
    if (size < palette_start + size_t{colors} * palette_entry) throw_error(name, ": BMP file is truncated (palette)");
    for (uint32_t i = 0; i < std::min<uint32_t>(colors, 256); ++i) {
      const uint8_t* entry = data + palette_start + size_t{i} * palette_entry;
      palette[i * 3] = entry[2];
      palette[i * 3 + 1] = entry[1];
      palette[i * 3 + 2] = entry[0];
    }
    // Pillow: an offset pointing right after the header means "palette follows, then pixels".
    if (offset == palette_start) offset += size_t{colors} * palette_entry;
  }

  Decoded decoded;
  Image& image = decoded.image;
  allocate(image, width, height);
  auto put_index = [&](int64_t x, int64_t row, int index) {
    const int64_t y = top_down ? row : height - 1 - row;
    std::memcpy(&image.rgb[static_cast<size_t>((y * width + x) * 3)], &palette[static_cast<size_t>(index) * 3], 3);
  };

  if (rle) {
    // Pillow's BmpRleDecoder: fills a width*height index buffer in file row order, zeros where nothing is written.
    const bool rle4 = compression == 2;
    const int64_t total = width * height;
    std::vector<uint8_t> indices;
    indices.reserve(static_cast<size_t>(total));
    size_t p = offset;
    int64_t x = 0;
    bool truncated = false;
    while (static_cast<int64_t>(indices.size()) < total) {
      if (p + 2 > size) {
        truncated = true;
        break;
      }
      int64_t count = data[p];
      const uint8_t value = data[p + 1];
      p += 2;
      if (count) {
        if (x + count > width) count = std::max<int64_t>(0, width - x);
        for (int64_t i = 0; i < count; ++i)
          indices.push_back(rle4 ? ((i % 2 == 0) ? value >> 4 : value & 0x0F) : value);
        x += count;
      } else if (value == 0) {  // end of line
        while (indices.size() % static_cast<size_t>(width) != 0) indices.push_back(0);
        x = 0;
      } else if (value == 1) {  // end of bitmap
        break;
      } else if (value == 2) {  // delta
        if (p + 2 > size) {
          truncated = true;
          break;
        }
        const int64_t skip =
            std::min<int64_t>(total - static_cast<int64_t>(indices.size()), data[p] + data[p + 1] * width);
        p += 2;
        indices.insert(indices.end(), static_cast<size_t>(skip), 0);
        x = static_cast<int64_t>(indices.size()) % width;
      } else {  // absolute run
        const int64_t n = std::min<int64_t>(total - static_cast<int64_t>(indices.size()), value);
        const size_t bytes = rle4 ? static_cast<size_t>((n + 1) / 2) : static_cast<size_t>(n);
        if (p + bytes > size) {
          truncated = true;
          break;
        }
        for (size_t i = 0; i < bytes; ++i) {
          if (rle4) {
            indices.push_back(data[p + i] >> 4);
            if (static_cast<int64_t>(i * 2 + 1) < n) indices.push_back(data[p + i] & 0x0F);
          } else {
            indices.push_back(data[p + i]);
          }
        }
        p += bytes;
        if (static_cast<int64_t>(indices.size()) == total) break;
        x += value;
        if (p % 2 != 0) ++p;  // word alignment, counted from the start of the file as Pillow's fd.tell() is
      }
    }
    if (truncated) throw_error(name, ": BMP file is truncated (RLE data)");
    indices.resize(static_cast<size_t>(total), 0);
    for (int64_t i = 0; i < total; ++i) put_index(i % width, i / width, indices[static_cast<size_t>(i)]);
    return decoded;
  }

  const size_t stride = static_cast<size_t>(((width * bits + 31) >> 3) & ~int64_t{3});
  const size_t row_used = static_cast<size_t>((width * bits + 7) / 8);
  for (int64_t row = 0; row < height; ++row) {
    const size_t start = offset + static_cast<size_t>(row) * stride;
    if (start + row_used > size) throw_error(name, ": BMP file is truncated (pixel data)");
    const uint8_t* in = data + start;
    const int64_t y = top_down ? row : height - 1 - row;
    uint8_t* out = &image.rgb[static_cast<size_t>(y * width * 3)];
    for (int64_t x = 0; x < width; ++x, out += 3) {
      switch (bits) {
        case 1:
        case 4:
        case 8: {
          const int64_t bit = x * bits;
          const int index = (in[bit / 8] >> (8 - bits - bit % 8)) & ((1 << bits) - 1);
          std::memcpy(out, &palette[static_cast<size_t>(index) * 3], 3);
          break;
        }
        case 16: {
          const unsigned v = u16(in + x * 2);
          if (bgr565) {
            out[0] = static_cast<uint8_t>(((v >> 11) & 31) * 255 / 31);
            out[1] = static_cast<uint8_t>(((v >> 5) & 63) * 255 / 63);
          } else {
            out[0] = static_cast<uint8_t>(((v >> 10) & 31) * 255 / 31);
            out[1] = static_cast<uint8_t>(((v >> 5) & 31) * 255 / 31);
          }
          out[2] = static_cast<uint8_t>((v & 31) * 255 / 31);
          break;
        }
        case 24:
          out[0] = in[x * 3 + 2];
          out[1] = in[x * 3 + 1];
          out[2] = in[x * 3];
          break;
        default: {  // 32
          const uint8_t* px = in + x * 4;
          out[0] = px[layout32->r_byte];
          out[1] = px[layout32->g_byte];
          out[2] = px[layout32->b_byte];
          break;
        }
      }
    }
  }
  return decoded;
}

}  // namespace image_formats
}  // namespace qwen3vl
