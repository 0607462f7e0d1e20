// Where request media come from (tools/qwen3vl/server/media_source.cpp): data: URLs and their base64, file:// URLs
// with percent-decoding, all refused or decoded without the network (remote media off) and without reading any file
// (the allowed media folder is an empty temporary folder). Only ApiError may come out.
#include "fuzz_common.h"
#include "server/api_error.h"
#include "server/media_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const qwen3vl::fuzz::TempDir empty_media_dir;
  static const qwen3vl::server::MediaSource source = [] {
    qwen3vl::server::ServerOptions options;
    options.allowed_media_dir = empty_media_dir.path();
    return qwen3vl::server::MediaSource(options);
  }();
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const std::string bytes = source.load(text, "messages[0].content[0]", 1 << 20);
    qwen3vl::fuzz::check(!bytes.empty() && bytes.size() <= (1 << 20) + 5, "loaded bytes within the limit (base64 rounding aside)");
  } catch (const qwen3vl::server::ApiError&) {
  }
  try {
    qwen3vl::server::decode_base64(text, "fuzz");
  } catch (const qwen3vl::server::ApiError&) {
  }
  return 0;
}
