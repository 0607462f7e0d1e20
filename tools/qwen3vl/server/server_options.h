// Settings of `qwen3vl serve` (flags in tools/qwen3vl/serve_command.cpp; llama-server spellings where one exists).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qwen3vl {
namespace server {

struct ServerOptions {
  std::string model_dir;
  std::string weight_format, vision_format;  // --weight-format / --vision-format: "" runs the weights as shipped
  std::string chat_template_file;   // --chat-template-file: rendered instead of the checkpoint's template
  std::string model_alias;          // the id in /v1/models and responses; default: the model folder's name
  std::string host = "127.0.0.1";   // loopback unless the operator says otherwise
  int port = 8080;                  // 0: any free port (tests)
  std::string api_key;              // non-empty: /v1/* and /metrics need "Authorization: Bearer <key>"
  std::string api_key_file;         // the key read from this file instead (serve_command), so it is not on argv
  // Host and Origin allow-lists (http_request_guard.h): the loopback names and `host` are always allowed.
  std::vector<std::string> allowed_hosts;    // "name" (any port) or "name:port"; "*" turns the check off
  std::vector<std::string> allowed_origins;  // "scheme://name[:port]"; a request's own origin is always allowed

  // Concurrency: `parallel` generations run at once, up to `max_queue` more wait; past that, 503 + Retry-After.
  int parallel = 2;
  int max_queue = 16;
  int retry_after_s = 1;

  // Connections (http_listener.h): each live connection has its own thread; past the cap, 503 and close.
  int max_connections = 0;          // 0: the larger of 128 and parallel + max_queue + 8
  double header_timeout_s = 10.0;   // request line + headers of one request, from its first byte
  double body_timeout_s = 60.0;     // the body, from the end of the headers
  int timeout_s = 60;               // how long one write may wait for a client that does not read

  // Limits per request.
  int64_t ctx_size = 8192;          // prompt + completion tokens of one request (KV cache memory is planned from it)
  int64_t n_predict = 2048;         // default max_tokens when the request gives none
  size_t max_body_bytes = 64u << 20;
  size_t max_body_memory = 256u << 20;     // the bodies of all requests in flight together
  int64_t max_image_pixels = 40'000'000;   // decoded width*height of one input image, checked from the header
  int64_t max_visual_tokens = 0;           // all images of one request together, after resizing; 0: ctx_size
  int max_media_items = 16;
  double media_timeout_s = 30.0;           // fetching + decoding all media of one request
  double max_video_seconds = 600.0;        // longest video accepted (its duration from the container scan)

  // Per-image pixel budget defaults (preprocessor_config.json when unset); requests may override them.
  std::optional<int64_t> min_pixels, max_pixels;
  std::string resize_rule = "transformers";  // or "qwen-vl-utils"

  // Media sources beyond data: URLs (docs/security.md, Media).
  std::string allowed_media_dir;    // local files (file:// or absolute paths) only under this folder; empty: none
  bool allow_remote_media = false;  // http(s) image URLs are fetched only when set
  std::vector<std::string> allowed_media_domains;    // non-empty: fetch only from these host names
  std::vector<std::string> allowed_media_addresses;  // CIDR ranges fetched from although not public (opt-in)
  size_t max_media_bytes = 256u << 20;  // read from files and URLs by one request, all items together
  int max_media_fetches = 64;           // connections (redirects included) one request may open

  // LoRA adapters (lora_registry.h): "NAME=DIR" or "DIR" (named after the folder), loaded at start with ids 0, 1, ...
  std::vector<std::string> lora_adapters;
  std::string allowed_lora_dir;     // POST /lora-adapters may load adapters from folders inside it; empty: none

  size_t image_cache_bytes = 256u << 20;  // vision-tower outputs kept by image content; 0 disables the cache
  bool verbose = false;                   // one log line per request on stderr
};

}  // namespace server
}  // namespace qwen3vl
