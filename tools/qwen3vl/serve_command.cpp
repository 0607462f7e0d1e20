#include "serve_command.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/timer.h"
#include "engine/loaded_model.h"
#include "chat_template_option.h"
#include "server/http_server.h"
#include "weight_format_options.h"

namespace qwen3vl {
namespace cli {

namespace {

// SIGINT/SIGTERM only write a byte to this pipe (write is async-signal-safe); a thread reads it and stops the server.
int g_stop_pipe[2] = {-1, -1};

void on_signal(int) {
  const int saved_errno = errno;
  const char byte = 1;
  [[maybe_unused]] const ssize_t written = write(g_stop_pipe[1], &byte, 1);  // a full pipe already says "stop"
  errno = saved_errno;
}

// The key from --api-key-file: its first line, without surrounding whitespace.
std::string read_key_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(path, ": cannot read the API key file");
  std::string line;
  std::getline(in, line);
  const size_t first = line.find_first_not_of(" \t\r");
  const size_t last = line.find_last_not_of(" \t\r");
  if (first == std::string::npos) throw_error(path, ": the API key file is empty");
  return line.substr(first, last - first + 1);
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.compare(0, 4, "127.") == 0;
}

}  // namespace

CLI::App* add_serve_command(CLI::App& app, server::ServerOptions& o) {
  CLI::App* serve = app.add_subcommand("serve", "Serve the OpenAI chat API and a web page over HTTP");
  serve->add_option("-m,--model", o.model_dir, "Checkpoint directory (Hugging Face layout)")->required();
  add_weight_format_options(serve, o.weight_format, o.vision_format);
  add_chat_template_option(serve, o.chat_template_file);
  serve->add_option("-a,--alias", o.model_alias, "Model id in /v1/models and responses (default: the folder name)");
  serve->add_option("--host", o.host, "Address to listen on (default 127.0.0.1: this machine only)");
  serve->add_option("--port", o.port, "Port to listen on; 0 picks a free one (default 8080)")
      ->check(CLI::Range(0, 65535));
  CLI::Option* key = serve->add_option("--api-key", o.api_key,
                                       "Require \"Authorization: Bearer KEY\" on /v1/* and /metrics (also read from "
                                       "QWEN3VL_API_KEY, which keeps it out of the process list)")
                         ->envname("QWEN3VL_API_KEY");
  serve->add_option("--api-key-file", o.api_key_file, "Read the API key from the first line of this file")
      ->excludes(key);
  serve->add_option("--allowed-host", o.allowed_hosts,
                    "Also answer requests whose Host is NAME or NAME:PORT (repeatable; '*' allows any). Always "
                    "allowed: localhost, 127.0.0.1, [::1] and the --host address")
      ->allow_extra_args(false);
  serve->add_option("--allowed-origin", o.allowed_origins,
                    "Also accept browser requests from this Origin, e.g. https://chat.example.com (repeatable; '*' "
                    "allows any). A page's own origin is always allowed")
      ->allow_extra_args(false);
  serve->add_option("--parallel", o.parallel, "Generations running at once (default 2)")
      ->check(CLI::Range(1, 256));
  serve->add_option("--max-queue", o.max_queue,
                    "Requests that may wait for a slot; past that, 503 with Retry-After (default 16)")
      ->check(CLI::Range(0, 4096));
  serve->add_option("--max-connections,--threads-http", o.max_connections,
                    "Connections served at once, each on its own thread; more are answered 503 and closed "
                    "(default: the larger of 128 and parallel + max-queue + 8)")
      ->check(CLI::Range(1, 65536));
  serve->add_option("--header-timeout", o.header_timeout_s,
                    "Seconds a client has to send a request's line and headers (default 10)")
      ->check(CLI::Range(0.1, 3600.0));
  serve->add_option("--body-timeout", o.body_timeout_s,
                    "Seconds a client has to send a request's body after its headers (default 60)")
      ->check(CLI::Range(0.1, 86400.0));
  serve->add_option("--timeout", o.timeout_s,
                    "Seconds a response write may wait for a client that does not read (default 60)")
      ->check(CLI::Range(1, 86400));
  serve->add_option("-c,--ctx-size", o.ctx_size,
                    "Most prompt + completion tokens of one request (default 8192, at most the model's context)")
      ->check(CLI::Range(int64_t{16}, int64_t{1} << 24));
  serve->add_option("-n,--n-predict", o.n_predict, "Default max_tokens when a request gives none (default 2048)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  serve->add_option("--max-body-size", o.max_body_bytes, "Largest request body in bytes (default 64 MiB)");
  serve->add_option("--max-body-memory", o.max_body_memory,
                    "Bytes of request bodies held at once, all requests together; past it, 503 (default 256 MiB)");
  serve->add_option("--max-image-pixels", o.max_image_pixels,
                    "Refuse an input image over this many pixels, checked before decoding (default 40000000)");
  serve->add_option("--max-visual-tokens", o.max_visual_tokens,
                    "Visual tokens of all images in one request together; larger requests are shrunk to fit, "
                    "requests may ask for less (default: the context size)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  serve->add_option("--max-media", o.max_media_items, "Images (and videos) per request (default 16)");
  serve->add_option("--media-timeout", o.media_timeout_s,
                    "Seconds for fetching, decoding, resizing and encoding one request's media (default 30)")
      ->check(CLI::Range(0.001, 86400.0));
  serve->add_option("--max-video-seconds", o.max_video_seconds, "Longest video accepted, in seconds (default 600)");
  serve->add_option("--min-pixels", o.min_pixels, "Default minimum pixels per image (default: preprocessor_config)");
  serve->add_option("--max-pixels", o.max_pixels, "Default maximum pixels per image (default: preprocessor_config)");
  serve->add_option("--resize-rule", o.resize_rule, "'transformers' (default) or 'qwen-vl-utils'")
      ->check(CLI::IsMember({"transformers", "qwen-vl-utils"}));
  serve->add_option("--allowed-media-dir,--allowed-local-media-path", o.allowed_media_dir,
                    "Allow file:// and absolute-path images, only inside this folder");
  serve->add_flag("--allow-remote-media", o.allow_remote_media,
                  "Fetch http(s) media URLs (off by default); only from public addresses unless allowed below");
  serve->add_option("--allowed-media-domains", o.allowed_media_domains,
                    "Fetch only from these host names, comma-separated (default: any public host)")
      ->delimiter(',');
  serve->add_option("--allow-media-address", o.allowed_media_addresses,
                    "Also fetch from this loopback/private/reserved CIDR range, e.g. 10.1.0.0/16 (repeatable)")
      ->allow_extra_args(false);
  serve->add_option("--max-media-bytes", o.max_media_bytes,
                    "Bytes one request may read from media files and URLs together (default 256 MiB)");
  serve->add_option("--max-media-fetches", o.max_media_fetches,
                    "Connections (redirects included) one request may open for remote media (default 64)")
      ->check(CLI::Range(0, 100000));
  serve->add_option("--lora", o.lora_adapters,
                    "PEFT LoRA adapter to serve: NAME=DIR, or DIR named after its folder (repeatable; ids 0, 1, ... in "
                    "this order). A request picks it by \"model\": NAME or by \"lora\": [{\"id\", \"scale\"}]")
      ->allow_extra_args(false);
  serve->add_option("--allowed-lora-dir", o.allowed_lora_dir,
                    "Let POST /lora-adapters load adapters from folders inside this one (off by default)");
  serve->add_option_function<size_t>(
      "--image-cache-mb", [&o](const size_t& mib) { o.image_cache_bytes = mib << 20; },
      "Memory for cached vision outputs, in MiB; 0 disables (default 256)");
  serve->add_flag("-v,--verbose", o.verbose, "Log one line per request to stderr");
  return serve;
}

int serve_command(const server::ServerOptions& given) {
  server::ServerOptions options = given;
  if (!options.api_key_file.empty()) options.api_key = read_key_file(options.api_key_file);
  if (options.api_key.empty() && !is_loopback(options.host))
    std::fprintf(stderr,
                 "serve: warning: listening on %s with no API key: anyone who can reach this address can use the "
                 "model and read /metrics; set QWEN3VL_API_KEY or --api-key-file\n",
                 options.host.c_str());
  Stopwatch load_clock;
  LoadOptions load_options;
  apply_weight_formats(WeightFormatOptions{options.weight_format, options.vision_format}, load_options);
  load_options.chat_template_file = options.chat_template_file;
  const auto model = load_model(options.model_dir, load_options);
  server::HttpServer http(*model, options);
  const int port = http.bind();
  const std::string adapters =
      options.lora_adapters.empty() ? "" : " and " + std::to_string(options.lora_adapters.size()) + " LoRA adapters";
  std::fprintf(stderr, "serve: model %s%s loaded in %.2f s; listening on http://%s:%d (parallel %d, queue %d)\n",
               options.model_dir.c_str(), adapters.c_str(), load_clock.seconds(), options.host.c_str(), port,
               options.parallel, options.max_queue);
  if (pipe2(g_stop_pipe, O_CLOEXEC) != 0) throw_error("serve: cannot create the signal pipe");
  std::thread stopper([&http] {
    char byte = 0;
    while (read(g_stop_pipe[0], &byte, 1) < 0 && errno == EINTR) {
    }
    http.stop();
  });
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  http.run();
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  on_signal(0);  // wakes the stopper when the server ended without a signal
  stopper.join();
  close(g_stop_pipe[0]);
  close(g_stop_pipe[1]);
  std::fprintf(stderr, "serve: stopped\n");
  return 0;
}

}  // namespace cli
}  // namespace qwen3vl
