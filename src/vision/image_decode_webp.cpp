// WebP through libwebp's WebPAnimDecoder in MODE_RGBA, which is what Pillow's _webp module uses for every WebP
// (still or animated): the first frame on the canvas, non-premultiplied, default fancy upsampling. convert("RGB")
// then drops alpha.
#include <webp/decode.h>
#include <webp/demux.h>

#include <cstring>

#include "core/error.h"
#include "vision/image_formats.h"

namespace qwen3vl {
namespace image_formats {

Decoded decode_webp(const uint8_t* data, size_t size, const DecodeContext& context) {
  Decoded decoded;
  WebPBitstreamFeatures features;
  const VP8StatusCode status = WebPGetFeatures(data, size, &features);
  if (status == VP8_STATUS_NOT_ENOUGH_DATA) throw_error(context.name, ": WebP file is truncated");
  if (status != VP8_STATUS_OK)
    throw_error(context.name, ": corrupt WebP header (status ", static_cast<int>(status), ")");
  // The canvas (VP8X) size is what the decoder allocates; WebPGetFeatures reports it for extended files.
  check_dimensions(context, features.width, features.height);

  WebPData input{data, size};
  WebPAnimDecoderOptions options;
  if (!WebPAnimDecoderOptionsInit(&options)) throw_error(context.name, ": libwebp version mismatch");
  options.color_mode = MODE_RGBA;
  options.use_threads = 0;
  struct DecoderHandle {
    WebPAnimDecoder* decoder;
    ~DecoderHandle() { WebPAnimDecoderDelete(decoder); }
  } handle{WebPAnimDecoderNew(&input, &options)};
  if (!handle.decoder) throw_error(context.name, ": corrupt or truncated WebP (cannot parse the container)");

  WebPAnimInfo info;
  if (!WebPAnimDecoderGetInfo(handle.decoder, &info)) throw_error(context.name, ": corrupt WebP (no canvas info)");
  check_dimensions(context, info.canvas_width, info.canvas_height);
  uint8_t* rgba = nullptr;
  int timestamp = 0;
  if (!WebPAnimDecoderHasMoreFrames(handle.decoder) || !WebPAnimDecoderGetNext(handle.decoder, &rgba, &timestamp))
    throw_error(context.name, ": corrupt or truncated WebP (the first frame does not decode)");

  Image& image = decoded.image;
  allocate(image, info.canvas_width, info.canvas_height);
  const size_t pixels = static_cast<size_t>(info.canvas_width) * info.canvas_height;
  for (size_t i = 0; i < pixels; ++i) std::memcpy(&image.rgb[i * 3], &rgba[i * 4], 3);

  // Pillow reads the EXIF and "XMP " chunks through the same demuxer.
  const WebPDemuxer* demuxer = WebPAnimDecoderGetDemuxer(handle.decoder);
  WebPChunkIterator chunk;
  if (WebPDemuxGetChunk(demuxer, "EXIF", 1, &chunk)) {
    decoded.exif.assign(chunk.chunk.bytes, chunk.chunk.bytes + chunk.chunk.size);
    WebPDemuxReleaseChunkIterator(&chunk);
  }
  if (WebPDemuxGetChunk(demuxer, "XMP ", 1, &chunk)) {
    decoded.xmp.assign(reinterpret_cast<const char*>(chunk.chunk.bytes), chunk.chunk.size);
    WebPDemuxReleaseChunkIterator(&chunk);
  }
  return decoded;
}

}  // namespace image_formats
}  // namespace qwen3vl
