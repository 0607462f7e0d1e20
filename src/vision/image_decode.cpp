#include "vision/image_decode.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "core/error.h"
#include "vision/image_formats.h"

namespace qwen3vl {
namespace image_formats {

void check_dimensions(const DecodeContext& context, int64_t width, int64_t height) {
  if (width <= 0 || height <= 0) throw_error(context.name, ": image has invalid size ", width, "x", height);
  const int64_t pixels = width * height;
  if (context.max_input_pixels > 0 && pixels > context.max_input_pixels)
    throw_error(context.name, ": image is ", width, "x", height, " = ", pixels, " pixels, over the input limit of ",
                context.max_input_pixels, " pixels");
  if (pixels > kDecodeHardPixelLimit)
    throw_error(context.name, ": image is ", width, "x", height, " = ", pixels,
                " pixels, over the decompression-bomb limit of ", kDecodeHardPixelLimit, " pixels (Pillow's)");
}

void allocate(Image& image, int64_t width, int64_t height) {
  image.width = static_cast<int>(width);
  image.height = static_cast<int>(height);
  image.rgb.assign(static_cast<size_t>(width * height * 3), 0);
}

namespace {

// Pillow's Exif.load + IFD0 lookup of tag 0x0112. std::nullopt when there is no usable tag.
std::optional<int> exif_orientation_tag(const std::vector<uint8_t>& exif) {
  const uint8_t* p = exif.data();
  size_t n = exif.size();
  if (n >= 6 && std::memcmp(p, "Exif\0\0", 6) == 0) {
    p += 6;
    n -= 6;
  }
  if (n < 8) return std::nullopt;
  const bool little = p[0] == 'I' && p[1] == 'I' && p[2] == 42 && p[3] == 0;
  const bool big = p[0] == 'M' && p[1] == 'M' && p[2] == 0 && p[3] == 42;
  if (!little && !big) return std::nullopt;
  auto u16 = [&](size_t at) -> uint32_t { return little ? p[at] | (p[at + 1] << 8) : (p[at] << 8) | p[at + 1]; };
  auto u32 = [&](size_t at) -> uint32_t {
    return little ? u16(at) | (u16(at + 2) << 16) : (u16(at) << 16) | u16(at + 2);
  };
  const size_t ifd = u32(4);
  if (ifd + 2 > n) return std::nullopt;
  const size_t entries = u16(ifd);
  for (size_t i = 0; i < entries; ++i) {
    const size_t entry = ifd + 2 + i * 12;
    if (entry + 12 > n) break;
    if (u16(entry) != 0x0112) continue;
    const uint32_t type = u16(entry + 2), count = u32(entry + 4);
    if (count != 1) return std::nullopt;  // Pillow would return a tuple, which matches no orientation
    switch (type) {
      case 1:
      case 7:
        return p[entry + 8];  // BYTE / UNDEFINED
      case 3:
        return static_cast<int>(u16(entry + 8));  // SHORT
      case 8:
        return static_cast<int>(static_cast<int16_t>(u16(entry + 8)));  // SSHORT
      case 4:
        return static_cast<int>(u32(entry + 8));  // LONG
      case 9:
        return static_cast<int>(static_cast<int32_t>(u32(entry + 8)));  // SLONG
      default:
        return std::nullopt;
    }
  }
  return std::nullopt;
}

}  // namespace

int exif_orientation(const std::vector<uint8_t>& exif, const std::string& xmp) {
  if (const std::optional<int> tag = exif_orientation_tag(exif)) return *tag;
  // Pillow's regex tiff:Orientation(="|>)([0-9]) on the XMP packet, first match.
  static const char kKey[] = "tiff:Orientation";
  for (size_t at = xmp.find(kKey); at != std::string::npos; at = xmp.find(kKey, at + 1)) {
    size_t next = at + sizeof kKey - 1;
    if (next < xmp.size() && xmp[next] == '>') {
      next += 1;
    } else if (next + 1 < xmp.size() && xmp[next] == '=' && xmp[next + 1] == '"') {
      next += 2;
    } else {
      continue;
    }
    if (next < xmp.size() && xmp[next] >= '0' && xmp[next] <= '9') return xmp[next] - '0';
  }
  return 1;
}

}  // namespace image_formats

void apply_exif_orientation(Image& image, int orientation) {
  if (orientation < 2 || orientation > 8) return;
  const int64_t w = image.width, h = image.height;
  const bool swaps = orientation >= 5;  // TRANSPOSE, ROTATE_270, TRANSVERSE, ROTATE_90
  const int64_t out_w = swaps ? h : w, out_h = swaps ? w : h;
  std::vector<uint8_t> out(image.rgb.size());
  for (int64_t y = 0; y < out_h; ++y) {
    for (int64_t x = 0; x < out_w; ++x) {
      int64_t sx = x, sy = y;  // source pixel of Pillow's Image.transpose(method)
      switch (orientation) {
        case 2:
          sx = w - 1 - x;
          break;  // FLIP_LEFT_RIGHT
        case 3:
          sx = w - 1 - x;
          sy = h - 1 - y;
          break;  // ROTATE_180
        case 4:
          sy = h - 1 - y;
          break;  // FLIP_TOP_BOTTOM
        case 5:
          sx = y;
          sy = x;
          break;  // TRANSPOSE
        case 6:
          sx = y;
          sy = h - 1 - x;
          break;  // ROTATE_270 (90 degrees clockwise)
        case 7:
          sx = w - 1 - y;
          sy = h - 1 - x;
          break;  // TRANSVERSE
        case 8:
          sx = w - 1 - y;
          sy = x;
          break;  // ROTATE_90 (counter-clockwise)
      }
      std::memcpy(&out[static_cast<size_t>((y * out_w + x) * 3)], &image.rgb[static_cast<size_t>((sy * w + sx) * 3)],
                  3);
    }
  }
  image.width = static_cast<int>(out_w);
  image.height = static_cast<int>(out_h);
  image.rgb.swap(out);
}

void check_image_limits(const Image& image, int64_t max_input_pixels, const std::string& name_for_errors) {
  if (max_input_pixels <= 0) return;
  const int64_t pixels = int64_t{image.width} * image.height;
  if (pixels > max_input_pixels)
    throw_error(name_for_errors, ": image is ", image.width, "x", image.height, " = ", pixels,
                " pixels, over the input limit of ", max_input_pixels, " pixels");
}

namespace {

bool starts_with(const uint8_t* data, size_t size, const char* magic, size_t length, size_t at = 0) {
  return size >= at + length && std::memcmp(data + at, magic, length) == 0;
}

// Names formats we recognise but do not decode, so the error says what the file is.
const char* unsupported_format(const uint8_t* data, size_t size) {
  if (starts_with(data, size, "II*\0", 4) || starts_with(data, size, "MM\0*", 4)) return "TIFF";
  if (starts_with(data, size, "ftypheic", 8, 4) || starts_with(data, size, "ftypheix", 8, 4) ||
      starts_with(data, size, "ftypmif1", 8, 4))
    return "HEIF/HEIC";
  if (starts_with(data, size, "ftypavif", 8, 4)) return "AVIF";
  if (starts_with(data, size, "\0\0\0\x0cjP  ", 8) || starts_with(data, size, "\xff\x4f\xff\x51", 4))
    return "JPEG 2000";
  if (starts_with(data, size, "8BPS", 4)) return "PSD";
  if (starts_with(data, size, "\0\0\1\0", 4)) return "ICO";
  if (starts_with(data, size, "\x76\x2f\x31\x01", 4)) return "OpenEXR";
  if (starts_with(data, size, "%PDF", 4)) return "PDF";
  if (starts_with(data, size, "<svg", 4) || starts_with(data, size, "<?xml", 5)) return "SVG/XML";
  return nullptr;
}

}  // namespace

Image decode_image_bytes(const uint8_t* data, size_t size, const std::string& name_for_errors,
                         int64_t max_input_pixels) {
  using namespace image_formats;
  if (size == 0) throw_error(name_for_errors, ": empty image file");
  const DecodeContext context{name_for_errors, max_input_pixels};
  Decoded decoded;
  if (starts_with(data, size, "\xff\xd8\xff", 3)) {
    decoded = decode_jpeg(data, size, context);
  } else if (starts_with(data, size, "\x89PNG\r\n\x1a\n", 8)) {
    decoded = decode_png(data, size, context);
  } else if (starts_with(data, size, "RIFF", 4) && starts_with(data, size, "WEBP", 4, 8)) {
    decoded = decode_webp(data, size, context);
  } else if (starts_with(data, size, "GIF87a", 6) || starts_with(data, size, "GIF89a", 6)) {
    decoded = decode_gif(data, size, context);
  } else if (starts_with(data, size, "BM", 2)) {
    decoded = decode_bmp(data, size, context);
  } else if (const char* format = unsupported_format(data, size)) {
    throw_error(name_for_errors, ": unsupported image format ", format, " (supported: JPEG, PNG, WebP, GIF, BMP)");
  } else {
    throw_error(name_for_errors, ": not a recognised image file (supported: JPEG, PNG, WebP, GIF, BMP)");
  }
  apply_exif_orientation(decoded.image, exif_orientation(decoded.exif, decoded.xmp));
  if (decoded.has_color_key) {
    // transformers' convert_to_rgb sees info["transparency"] on load_image's RGB image, converts to RGBA (pixels
    // equal to the key get alpha 0) and composites on white: those pixels become white, the rest are unchanged.
    std::vector<uint8_t>& rgb = decoded.image.rgb;
    const int* key = decoded.color_key;
    for (size_t i = 0; i < rgb.size(); i += 3)
      if (rgb[i] == key[0] && rgb[i + 1] == key[1] && rgb[i + 2] == key[2]) rgb[i] = rgb[i + 1] = rgb[i + 2] = 255;
  }
  return std::move(decoded.image);
}

Image decode_image_file(const std::string& path, int64_t max_input_pixels) {
  // Opened first, then checked through the descriptor: what is read is what was checked. Only regular files: a
  // device such as /dev/zero would never end.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_error(path, errno == ENOENT ? ": cannot open image file (no such file)" : ": cannot open image file");
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  struct stat info {};
  if (fstat(fd, &info) != 0) throw_error(path, ": cannot open image file");
  if (S_ISDIR(info.st_mode)) throw_error(path, ": cannot open image file (it is a directory)");
  if (!S_ISREG(info.st_mode)) throw_error(path, ": not a regular file");
  if (static_cast<uint64_t>(info.st_size) > kMaxImageFileBytes)
    throw_error(path, ": the file is ", info.st_size, " bytes, over the limit of ", kMaxImageFileBytes,
                " for an image file");
  std::vector<uint8_t> bytes(static_cast<size_t>(info.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw_error(path, ": cannot read image file");
    done += static_cast<size_t>(n);
  }
  return decode_image_bytes(bytes.data(), bytes.size(), path, max_input_pixels);
}

}  // namespace qwen3vl
