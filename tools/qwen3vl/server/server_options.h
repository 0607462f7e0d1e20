// Settings of `qwen3vl serve` (flags in tools/qwen3vl/serve_command.cpp; llama-server spellings where one exists).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace qwen3vl {
namespace server {

struct ServerOptions {
  std::string model_dir;
  std::string weight_format, vision_format;  // --weight-format / --vision-format: "" runs the weights as shipped
  std::string model_alias;          // the id in /v1/models and responses; default: the model folder's name
  std::string host = "127.0.0.1";   // loopback unless the operator says otherwise
  int port = 8080;                  // 0: any free port (tests)
  std::string api_key;              // non-empty: /v1/* and /metrics need "Authorization: Bearer <key>"

  // Concurrency: `parallel` generations run at once, up to `max_queue` more wait; past that, 503 + Retry-After.
  int parallel = 2;
  int max_queue = 16;
  int http_threads = 0;             // 0: parallel + max_queue + 8 (health, metrics and rejections stay answerable)
  int retry_after_s = 1;
  int timeout_s = 600;              // socket read/write timeout

  // Limits per request.
  int64_t ctx_size = 8192;          // prompt + completion tokens of one request (KV cache memory is planned from it)
  int64_t n_predict = 2048;         // default max_tokens when the request gives none
  size_t max_body_bytes = 64u << 20;
  int64_t max_image_pixels = 40'000'000;   // decoded width*height of one input image, checked from the header
  int64_t max_visual_tokens = 16384;       // all images of one request together, after resizing
  int max_media_items = 16;
  double media_timeout_s = 30.0;           // fetching + decoding all media of one request
  double max_video_seconds = 600.0;        // longest video accepted (its duration from the container scan)

  // Per-image pixel budget defaults (preprocessor_config.json when unset); requests may override them.
  std::optional<int64_t> min_pixels, max_pixels;
  std::string resize_rule = "transformers";  // or "qwen-vl-utils"

  // Media sources beyond data: URLs.
  std::string allowed_media_dir;    // local files (file:// or absolute paths) only under this folder; empty: none
  bool allow_remote_media = false;  // http(s) image URLs are fetched only when set

  size_t image_cache_bytes = 256u << 20;  // vision-tower outputs kept by image content; 0 disables the cache
  bool verbose = false;                   // one log line per request on stderr
};

}  // namespace server
}  // namespace qwen3vl
