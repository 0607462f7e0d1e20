#include "serve_command.h"

#include <csignal>
#include <cstdio>
#include <thread>

#include "core/timer.h"
#include "engine/loaded_model.h"
#include "server/http_server.h"
#include "weight_format_options.h"

namespace qwen3vl {
namespace cli {

namespace {
server::HttpServer* g_server = nullptr;
void on_signal(int) {
  if (g_server) g_server->stop();
}
}  // namespace

CLI::App* add_serve_command(CLI::App& app, server::ServerOptions& o) {
  CLI::App* serve = app.add_subcommand("serve", "Serve the OpenAI chat API and a web page over HTTP");
  serve->add_option("-m,--model", o.model_dir, "Checkpoint directory (Hugging Face layout)")->required();
  add_weight_format_options(serve, o.weight_format, o.vision_format);
  serve->add_option("-a,--alias", o.model_alias, "Model id in /v1/models and responses (default: the folder name)");
  serve->add_option("--host", o.host, "Address to listen on (default 127.0.0.1: this machine only)");
  serve->add_option("--port", o.port, "Port to listen on; 0 picks a free one (default 8080)")
      ->check(CLI::Range(0, 65535));
  serve->add_option("--api-key", o.api_key, "Require \"Authorization: Bearer KEY\" on /v1/* and /metrics");
  serve->add_option("--parallel", o.parallel, "Generations running at once (default 2)")
      ->check(CLI::Range(1, 256));
  serve->add_option("--max-queue", o.max_queue,
                    "Requests that may wait for a slot; past that, 503 with Retry-After (default 16)")
      ->check(CLI::Range(0, 4096));
  serve->add_option("--threads-http", o.http_threads, "HTTP worker threads (default: parallel + max-queue + 8)");
  serve->add_option("--timeout", o.timeout_s, "Socket read/write timeout in seconds (default 600)")
      ->check(CLI::Range(1, 86400));
  serve->add_option("-c,--ctx-size", o.ctx_size,
                    "Most prompt + completion tokens of one request (default 8192, at most the model's context)")
      ->check(CLI::Range(int64_t{16}, int64_t{1} << 24));
  serve->add_option("-n,--n-predict", o.n_predict, "Default max_tokens when a request gives none (default 2048)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  serve->add_option("--max-body-size", o.max_body_bytes, "Largest request body in bytes (default 64 MiB)");
  serve->add_option("--max-image-pixels", o.max_image_pixels,
                    "Refuse an input image over this many pixels, checked before decoding (default 40000000)");
  serve->add_option("--max-visual-tokens", o.max_visual_tokens,
                    "Visual tokens of all images in one request together; larger requests are shrunk to fit, "
                    "requests may ask for less (default 16384)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  serve->add_option("--max-media", o.max_media_items, "Images (and videos) per request (default 16)");
  serve->add_option("--media-timeout", o.media_timeout_s,
                    "Seconds for loading and decoding one request's media, checked between items (default 30)");
  serve->add_option("--max-video-seconds", o.max_video_seconds, "Longest video accepted, in seconds (default 600)");
  serve->add_option("--min-pixels", o.min_pixels, "Default minimum pixels per image (default: preprocessor_config)");
  serve->add_option("--max-pixels", o.max_pixels, "Default maximum pixels per image (default: preprocessor_config)");
  serve->add_option("--resize-rule", o.resize_rule, "'transformers' (default) or 'qwen-vl-utils'")
      ->check(CLI::IsMember({"transformers", "qwen-vl-utils"}));
  serve->add_option("--allowed-media-dir,--allowed-local-media-path", o.allowed_media_dir,
                    "Allow file:// and absolute-path images, only inside this folder");
  serve->add_flag("--allow-remote-media", o.allow_remote_media, "Fetch http(s) image URLs (off by default)");
  serve->add_option_function<size_t>(
      "--image-cache-mb", [&o](const size_t& mib) { o.image_cache_bytes = mib << 20; },
      "Memory for cached vision outputs, in MiB; 0 disables (default 256)");
  serve->add_flag("-v,--verbose", o.verbose, "Log one line per request to stderr");
  return serve;
}

int serve_command(const server::ServerOptions& options) {
  Stopwatch load_clock;
  LoadOptions load_options;
  apply_weight_formats(WeightFormatOptions{options.weight_format, options.vision_format}, load_options);
  const auto model = load_model(options.model_dir, load_options);
  server::HttpServer http(*model, options);
  const int port = http.bind();
  std::fprintf(stderr, "serve: model %s loaded in %.2f s; listening on http://%s:%d (parallel %d, queue %d)\n",
               options.model_dir.c_str(), load_clock.seconds(), options.host.c_str(), port, options.parallel,
               options.max_queue);
  g_server = &http;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  http.run();
  g_server = nullptr;
  std::fprintf(stderr, "serve: stopped\n");
  return 0;
}

}  // namespace cli
}  // namespace qwen3vl
