// GIF first frame through giflib, laid out as Pillow's GifImagePlugin lays out frame 0:
// - the canvas is the logical screen, grown if the frame's extent reaches past it;
// - it starts as the frame's transparency index if the graphic control extension names one, else index 0 (Pillow
//   does not use the background colour for frame 0);
// - the frame's indices are written over its extent (transparent ones included), then mapped through the local
//   colour table if present, else the global one; with no table at all the index is the gray level.
// convert("RGB") keeps the transparent index as info["transparency"] = its colour, which transformers'
// convert_to_rgb then turns white wherever that colour appears (applied in image_decode.cpp).
#include <gif_lib.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "vision/image_formats.h"

namespace qwen3vl {
namespace image_formats {
namespace {

struct Source {
  const uint8_t* data;
  size_t size;
  size_t offset;
};

int read_bytes(GifFileType* gif, GifByteType* out, int count) {
  auto* source = static_cast<Source*>(gif->UserData);
  const size_t available = source->size - source->offset;
  const size_t n = std::min(available, static_cast<size_t>(count < 0 ? 0 : count));
  std::memcpy(out, source->data + source->offset, n);
  source->offset += n;
  return static_cast<int>(n);
}

std::string gif_error(int code) {
  const char* text = GifErrorString(code);
  return text ? text : "unknown error";
}

}  // namespace

Decoded decode_gif(const uint8_t* data, size_t size, const DecodeContext& context) {
  Source source{data, size, 0};
  int error = 0;
  struct Handle {
    GifFileType* gif;
    ~Handle() {
      int ignored = 0;
      if (gif) DGifCloseFile(gif, &ignored);
    }
  } handle{DGifOpen(&source, read_bytes, &error)};
  GifFileType* gif = handle.gif;
  auto fail = [&](const char* what) {
    const int code = gif ? gif->Error : error;
    if (code == D_GIF_ERR_READ_FAILED || source.offset >= source.size)
      throw_error(context.name, ": GIF file is truncated (", what, ")");
    throw_error(context.name, ": corrupt GIF (", what, ": ", gif_error(code), ")");
  };
  if (!gif) fail("screen descriptor");

  int transparency = -1;  // from the graphic control extension before the first image
  while (true) {
    GifRecordType record;
    if (DGifGetRecordType(gif, &record) == GIF_ERROR) fail("record");
    if (record == TERMINATE_RECORD_TYPE) throw_error(context.name, ": GIF file has no image");
    if (record == EXTENSION_RECORD_TYPE) {
      int code = 0;
      GifByteType* block = nullptr;
      if (DGifGetExtension(gif, &code, &block) == GIF_ERROR) fail("extension");
      if (code == GRAPHICS_EXT_FUNC_CODE && block && block[0] >= 4) {
        // block[0] is the sub-block length; flags, delay (2 bytes), transparent index follow.
        transparency = (block[1] & 1) ? block[4] : -1;
      }
      while (block) {
        if (DGifGetExtensionNext(gif, &block) == GIF_ERROR) fail("extension");
      }
      continue;
    }
    if (record != IMAGE_DESC_RECORD_TYPE) continue;

    if (DGifGetImageDesc(gif) == GIF_ERROR) fail("image descriptor");
    const GifImageDesc& frame = gif->Image;
    const int64_t x0 = frame.Left, y0 = frame.Top, fw = frame.Width, fh = frame.Height;
    const int64_t width = std::max<int64_t>(gif->SWidth, x0 + fw);
    const int64_t height = std::max<int64_t>(gif->SHeight, y0 + fh);
    check_dimensions(context, width, height);

    std::vector<uint8_t> indices(static_cast<size_t>(width * height), static_cast<uint8_t>(std::max(transparency, 0)));
    std::vector<GifPixelType> line(static_cast<size_t>(std::max<int64_t>(fw, 1)));
    // Rows arrive in file order; interlaced frames use the four GIF passes.
    std::vector<int64_t> order;
    order.reserve(static_cast<size_t>(fh));
    if (frame.Interlace) {
      static const int kStart[4] = {0, 4, 2, 1}, kStep[4] = {8, 8, 4, 2};
      for (int pass = 0; pass < 4; ++pass)
        for (int64_t y = kStart[pass]; y < fh; y += kStep[pass]) order.push_back(y);
    } else {
      for (int64_t y = 0; y < fh; ++y) order.push_back(y);
    }
    for (const int64_t y : order) {
      if (fw > 0 && DGifGetLine(gif, line.data(), static_cast<int>(fw)) == GIF_ERROR) fail("image data");
      std::memcpy(&indices[static_cast<size_t>((y0 + y) * width + x0)], line.data(), static_cast<size_t>(fw));
    }

    const ColorMapObject* map = frame.ColorMap ? frame.ColorMap : gif->SColorMap;
    Decoded decoded;
    Image& image = decoded.image;
    allocate(image, width, height);
    for (size_t i = 0; i < indices.size(); ++i) {
      const int index = indices[i];
      uint8_t* out = &image.rgb[i * 3];
      if (!map) {
        out[0] = out[1] = out[2] = static_cast<uint8_t>(index);
      } else if (index < map->ColorCount) {
        out[0] = map->Colors[index].Red;
        out[1] = map->Colors[index].Green;
        out[2] = map->Colors[index].Blue;
      } else {
        out[0] = out[1] = out[2] = 0;
      }
    }
    if (transparency >= 0) {
      decoded.has_color_key = true;
      for (int c = 0; c < 3; ++c) {
        if (!map)
          decoded.color_key[c] = transparency;
        else if (transparency < map->ColorCount)
          decoded.color_key[c] = c == 0   ? map->Colors[transparency].Red
                                 : c == 1 ? map->Colors[transparency].Green
                                          : map->Colors[transparency].Blue;
        else
          decoded.color_key[c] = 0;
      }
    }
    return decoded;
  }
}

}  // namespace image_formats
}  // namespace qwen3vl
