#include "http_server.h"

#include <httplib.h>
#include <malloc.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <random>

#include "admission.h"
#include "api_error.h"
#include "chat_request.h"
#include "chat_service.h"
#include "completion_channel.h"
#include "connection_watch.h"
#include "core/error.h"
#include "core/timer.h"
#include "engine/tokenize.h"
#include "http_listener.h"
#include "http_request_guard.h"
#include "image_cache.h"
#include "lora_registry.h"
#include "metrics.h"
#include "openai_responses.h"
#include "tokenize_request.h"
#include "worker_pool.h"
#include "web_page_data.h"  // generated from web/index.html by web/embed.cmake

namespace qwen3vl {
namespace server {

namespace {

using ojson = nlohmann::ordered_json;

std::string random_hex(size_t length) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < length; ++i) out += kHex[rng() & 15];
  return out;
}

void send_error(httplib::Response& res, const ApiError& error) {
  res.status = error.status();
  res.set_content(error_body(error), "application/json");
}

// Compares without an early exit, so the key cannot be guessed byte by byte from response times.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) difference |= static_cast<unsigned char>(a[i] ^ b[i % (b.size() + 1)]);
  return difference == 0;
}

const char* status_message(int status) {
  switch (status) {
    case 400: return "malformed HTTP request";
    case 404: return "not found";
    case 405: return "method not allowed";
    case 413: return "the request body is too large";
    case 414: return "the request URI is too long";
    case 431: return "the request headers are too large";
    default: return status >= 500 ? "internal server error" : "bad request";
  }
}

// Request paths come percent-decoded: a log line shows their control and non-ASCII bytes as \xNN, so that a
// client cannot write terminal escapes or fake lines into the log.
std::string printable(const std::string& text) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// The defaults that depend on other settings.
ConnectionLimits connection_limits(const ServerOptions& options) {
  ConnectionLimits limits;
  limits.max_connections = static_cast<size_t>(options.max_connections);
  limits.header_timeout_s = options.header_timeout_s;
  limits.body_timeout_s = options.body_timeout_s;
  limits.max_body_bytes = options.max_body_bytes;
  limits.max_body_memory = options.max_body_memory;
  return limits;
}

bool is_chat_path(const std::string& path) { return path == "/v1/chat/completions" || path == "/chat/completions"; }

bool takes_json(const std::string& path) {
  return is_chat_path(path) || path == "/lora-adapters" || path == "/tokenize" || path == "/detokenize";
}

// llama-server's /tokenize answer: the ids, or with_pieces {"id", "piece"} objects whose piece is a string when it
// is valid UTF-8 on its own and else the list of its bytes.
ojson tokens_json(const LoadedModel& model, const std::vector<int32_t>& ids, bool with_pieces) {
  if (!with_pieces) return ids;
  ojson tokens = ojson::array();
  for (const TokenPiece& piece : token_pieces(model, std::vector<int64_t>(ids.begin(), ids.end()))) {
    ojson text = piece.bytes;
    if (!piece.utf8) {
      text = ojson::array();
      for (unsigned char byte : piece.bytes) text.push_back(byte);
    }
    tokens.push_back({{"id", piece.id}, {"piece", std::move(text)}});
  }
  return tokens;
}

ojson adapters_json(const std::vector<LoraRegistry::Listed>& adapters) {
  ojson list = ojson::array();
  for (const LoraRegistry::Listed& a : adapters)
    list.push_back({{"id", a.id}, {"name", a.name}, {"path", a.path}, {"scale", a.scale}});
  return list;
}

// A string member of a POST /lora-adapters object; empty when absent.
std::string string_member(const nlohmann::json& body, const char* key) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return "";
  if (!it->is_string()) bad_request(key, "expected a string");
  return it->get<std::string>();
}

}  // namespace

struct HttpServer::Impl {
  Impl(const LoadedModel& loaded, const ServerOptions& opts)
      : options(resolved_options(opts)), guard(options), cache(opts.image_cache_bytes),
        admission(opts.parallel, opts.max_queue),
        adapters(loaded, served_model_id(options), options.lora_adapters, options.allowed_lora_dir),
        service(loaded, options, cache, adapters), workers(opts.parallel),
        http(connection_limits(options)) {}

  void setup();
  httplib::Server::HandlerResponse check_before_body(const httplib::Request& req, httplib::Response& res);
  void handle_chat(const httplib::Request& req, httplib::Response& res);
  void handle_lora_update(const httplib::Request& req, httplib::Response& res);
  void handle_tokenize(const httplib::Request& req, httplib::Response& res);
  void handle_detokenize(const httplib::Request& req, httplib::Response& res);
  std::shared_ptr<Admission::Ticket> admit(httplib::Response& res, ConnectionWatch& watch);
  ojson models_json() const;

  struct StreamJob {
    std::shared_ptr<CompletionChannel> channel;
    ResponseHeader header;
    bool include_usage = false;
    ConnectionWatch watch;
    Stopwatch clock;
    StreamJob(std::shared_ptr<CompletionChannel> c, ResponseHeader h, bool usage, ConnectionWatch w, Stopwatch t)
        : channel(std::move(c)), header(std::move(h)), include_usage(usage), watch(std::move(w)), clock(t) {}
  };
  bool stream(StreamJob& job, httplib::DataSink& sink);
  void record(const ChatOutcome& outcome, const PreparedChat& prepared, double seconds);
  void release_memory_when_idle();

  ServerOptions options;
  RequestGuard guard;
  ImageCache cache;
  Admission admission;
  Metrics metrics;
  LoraRegistry adapters;
  ChatService service;
  WorkerPool workers;  // declared after what its tasks use, so it is joined first
  GuardedServer http;
  int port = -1;
  int64_t started = std::time(nullptr);
};

ojson HttpServer::Impl::models_json() const {
  const LoadedModel& model = service.model();
  ojson entry;
  entry["id"] = service.model_id();
  entry["object"] = "model";
  entry["created"] = started;
  entry["owned_by"] = "qwen3vl";
  entry["meta"] = {{"context_size", service.context_size()},
                   {"vocab_size", model.config.text_config.vocab_size},
                   {"thinking", model.chat_template.kind() == ChatTemplateKind::Thinking},
                   {"vision", model.vision != nullptr},
                   {"max_visual_tokens", options.max_visual_tokens}};
  ojson data = ojson::array({entry});
  for (const LoraRegistry::Listed& adapter : adapters.list())  // vLLM's cards for LoRA modules
    data.push_back({{"id", adapter.name},
                    {"object", "model"},
                    {"created", started},
                    {"owned_by", "qwen3vl"},
                    {"root", adapter.path},
                    {"parent", service.model_id()}});
  return {{"object", "list"}, {"data", data}};
}

// POST /lora-adapters: llama-server's [{"id", "scale"}] sets the default scales; {"path", "name"} loads an adapter
// (inside --allowed-lora-dir); {"id", "unload": true} unloads one. The answer lists the adapters after the change.
void HttpServer::Impl::handle_lora_update(const httplib::Request& req, httplib::Response& res) {
  const nlohmann::json body = parse_json_body(req.body);
  if (body.is_array()) {
    adapters.set_default_scales(parse_lora_choices(body, ""));
  } else if (body.is_object() && body.contains("path")) {
    const std::string path = string_member(body, "path");
    if (path.empty()) bad_request("path", "missing");
    adapters.load(string_member(body, "name"), path);
  } else if (body.is_object() && body.contains("unload")) {
    const auto unload = body.find("unload");
    const auto id = body.find("id");
    if (!unload->is_boolean() || !unload->get<bool>()) bad_request("unload", "expected true");
    if (id == body.end() || !id->is_number_integer()) bad_request("id", "expected the adapter's id (an integer)");
    adapters.unload(id->get<int64_t>());
  } else {
    bad_request("", "expected [{\"id\", \"scale\"}, ...] (default scales), {\"path\", \"name\"} (load) or "
                    "{\"id\", \"unload\": true}");
  }
  res.set_content(dump_json({{"success", true}, {"adapters", adapters_json(adapters.list())}}), "application/json");
}

// Memory the generations freed stays in glibc's per-thread arenas; when no generation runs, hand it back to the
// system, so the resident size tracks the load instead of its peak across worker threads.
void HttpServer::Impl::release_memory_when_idle() {
#ifdef __GLIBC__
  if (admission.running() == 0 && admission.waiting() == 0) malloc_trim(0);
#endif
}

void HttpServer::Impl::record(const ChatOutcome& outcome, const PreparedChat& prepared, double seconds) {
  CompletionFigures figures;
  figures.prompt_tokens = outcome.prompt_tokens;
  figures.completion_tokens = outcome.completion_tokens;
  figures.visual_tokens = prepared.visual_tokens;
  figures.videos = static_cast<int64_t>(prepared.videos.size());
  figures.images = static_cast<int64_t>(prepared.images.size());
  for (const auto& image : prepared.images) figures.cached_images += image.cached ? 1 : 0;
  figures.media_seconds = prepared.media_seconds;
  figures.vision_seconds = outcome.stats.vision_seconds;
  figures.prefill_seconds = outcome.stats.prefill_seconds;
  figures.decode_seconds = outcome.stats.decode_seconds;
  figures.total_seconds = seconds;
  metrics.count_completion(figures);
}

// A generation slot for this request: 503 + Retry-After when the queue is full; null (status 499) when the client
// leaves while queued.
std::shared_ptr<Admission::Ticket> HttpServer::Impl::admit(httplib::Response& res, ConnectionWatch& watch) {
  std::shared_ptr<Admission::Ticket> ticket = admission.try_enter();
  if (!ticket) {
    metrics.count_rejected();
    res.set_header("Retry-After", std::to_string(options.retry_after_s));
    throw ApiError(503,
                   "the server is busy (" + std::to_string(admission.running()) + " requests running, " +
                       std::to_string(admission.waiting()) + " waiting); retry later",
                   "", "server_busy");
  }
  if (!ticket->wait([&watch] { return !watch.closed(); })) {
    metrics.count_cancelled();
    res.status = 499;  // nobody reads this
    return nullptr;
  }
  return ticket;
}

void HttpServer::Impl::handle_chat(const httplib::Request& req, httplib::Response& res) {
  Stopwatch clock;
  auto request = std::make_shared<const ChatRequest>(parse_chat_request(req.body));
  service.check_model(request->model);
  ConnectionWatch watch(GuardedServer::current_socket());
  std::shared_ptr<Admission::Ticket> ticket = admit(res, watch);
  if (!ticket) return;

  // A worker prepares (media, budget, prompt, vision) and generates; this thread relays. The worker holds the slot.
  auto channel = std::make_shared<CompletionChannel>();
  workers.submit([this, request, channel, ticket]() mutable {
    try {
      PreparedChat prepared = service.prepare(*request);
      channel->set_prepared();
      ChatOutcome outcome = service.run(prepared, [&channel](const ReplyDelta& delta) {
        if (!delta.empty()) channel->push(delta);
        return !channel->cancelled.load();
      });
      channel->finish(std::move(prepared), std::move(outcome));
    } catch (...) {
      channel->fail(std::current_exception());
    }
    ticket.reset();
    release_memory_when_idle();
  });
  ticket.reset();

  // Until the request has passed every check, errors are still plain 4xx responses.
  CompletionChannel::State state = CompletionChannel::State::Preparing;
  while (state == CompletionChannel::State::Preparing) {
    state = channel->wait(std::chrono::milliseconds(100));
    if (state == CompletionChannel::State::Preparing && watch.closed()) channel->cancelled = true;
  }
  if (state == CompletionChannel::State::Failed) channel->rethrow();
  const ResponseHeader header{"chatcmpl-" + random_hex(24), static_cast<int64_t>(std::time(nullptr)),
                              request->model.empty() ? service.model_id() : request->model};

  if (!request->stream) {
    while (state != CompletionChannel::State::Finished && state != CompletionChannel::State::Failed) {
      std::vector<ReplyDelta> ignored;
      state = channel->wait(std::chrono::milliseconds(100), &ignored);
      if (watch.closed()) channel->cancelled = true;
    }
    if (state == CompletionChannel::State::Failed) channel->rethrow();
    if (channel->outcome().finish_reason == "cancelled") {
      metrics.count_cancelled();
      res.status = 499;
      return;
    }
    record(channel->outcome(), channel->prepared(), clock.seconds());
    res.set_content(completion_json(header, channel->outcome(), channel->prepared(), clock.seconds()),
                    "application/json");
    return;
  }
  auto job = std::make_shared<StreamJob>(channel, header, request->include_usage, std::move(watch), clock);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream", [this, job](size_t, httplib::DataSink& sink) { return stream(*job, sink); },
      [job](bool) { job->channel->cancelled = true; });  // however the response ends, stop generating
}

// POST /tokenize: a text (llama-server's request and answer), or a chat's prompt with its visual-token count. A chat
// with media is loaded and resized in a generation slot, as the chat endpoint does it; anything else answers at once.
void HttpServer::Impl::handle_tokenize(const httplib::Request& req, httplib::Response& res) {
  const TokenizeRequest request = parse_tokenize_request(req.body);
  const LoadedModel& model = service.model();
  if (!request.chat) {
    service.check_text_bytes(request.content.size(), "content");
    TokenizeOptions tokenize_options;
    tokenize_options.parse_special = request.parse_special;
    const std::vector<int32_t> ids = qwen3vl::tokenize(model, request.content, tokenize_options);
    res.set_content(dump_json({{"tokens", tokens_json(model, ids, request.with_pieces)}}), "application/json");
    return;
  }
  service.check_model(request.chat->model);
  std::shared_ptr<Admission::Ticket> ticket;
  if (!request.chat->media.empty()) {
    ConnectionWatch watch(GuardedServer::current_socket());
    ticket = admit(res, watch);
    if (!ticket) return;
  }
  const ChatTokens tokens = service.tokenize(*request.chat);
  if (ticket) {
    ticket.reset();
    release_memory_when_idle();  // what decoding and resizing the media took, as after a completion
  }
  res.set_content(dump_json({{"tokens", tokens_json(model, tokens.ids, request.with_pieces)},
                             {"visual_tokens", tokens.visual_tokens()},
                             {"image_tokens", tokens.image_tokens},
                             {"video_tokens", tokens.video_tokens}}),
                  "application/json");
}

// POST /detokenize: llama-server's {"tokens": [...]} -> {"content": TEXT}, special tokens included.
void HttpServer::Impl::handle_detokenize(const httplib::Request& req, httplib::Response& res) {
  const std::vector<int64_t> ids = parse_detokenize_request(req.body);
  std::string content;
  try {
    content = detokenize(service.model(), ids);
  } catch (const Error& error) {
    throw ApiError(400, error.what(), "tokens", "invalid_token");
  }
  res.set_content(dump_json({{"content", content}}), "application/json");
}

bool HttpServer::Impl::stream(StreamJob& job, httplib::DataSink& sink) {
  bool ok = true;
  auto send = [&](const std::string& event) {
    if (ok && !sink.write(event.data(), event.size())) ok = false;
    return ok;
  };
  CompletionChannel& channel = *job.channel;
  send(chunk_event(job.header, {{"role", "assistant"}, {"content", ""}}));
  CompletionChannel::State state = CompletionChannel::State::Generating;
  while (state == CompletionChannel::State::Generating) {
    std::vector<ReplyDelta> deltas;
    state = channel.wait(std::chrono::milliseconds(100), &deltas);
    for (const ReplyDelta& delta : deltas) {
      ojson piece = ojson::object();
      if (!delta.reasoning.empty()) piece["reasoning_content"] = delta.reasoning;
      if (!delta.content.empty()) piece["content"] = delta.content;
      send(chunk_event(job.header, piece));
    }
    if (!ok || job.watch.closed()) {
      channel.cancelled = true;
      metrics.count_cancelled();
      return false;  // the worker stops at its next token and frees the slot
    }
  }
  if (state == CompletionChannel::State::Failed) {  // headers are out: report it in the stream
    std::string body;
    try {
      channel.rethrow();
    } catch (const ApiError& error) {
      body = error_body(error);
    } catch (const std::exception& error) {
      body = error_body(500, std::string("internal error: ") + error.what(), "", "internal_error");
    }
    send(error_event(body));
  } else {
    const ChatOutcome& outcome = channel.outcome();
    ojson last = ojson::object();
    if (!outcome.grounding.is_null()) last["grounding"] = outcome.grounding;
    send(chunk_event(job.header, last, outcome.finish_reason));
    if (job.include_usage) send(usage_event(job.header, outcome, channel.prepared(), job.clock.seconds()));
    record(outcome, channel.prepared(), job.clock.seconds());
  }
  send(done_event());
  if (ok) sink.done();
  return ok;
}

// Runs after the headers and before the body is read (httplib's pre-routing handler): everything that can refuse a
// request without its body does so here, so a refused body is never read (the listener then closes the connection).
httplib::Server::HandlerResponse HttpServer::Impl::check_before_body(const httplib::Request& req,
                                                                     httplib::Response& res) {
  try {
    if (req.path != "/health") guard.check_host_and_origin(req);
    guard.check_body_framing(req);
    if (!http.reserve_body_memory(req.get_header_value<uint64_t>("Content-Length"))) {
      res.set_header("Retry-After", std::to_string(options.retry_after_s));
      throw ApiError(503, "the server is holding too many request bodies at once; retry later", "", "server_busy");
    }
    if (!options.api_key.empty() && req.path != "/" && req.path != "/index.html" && req.path != "/health") {
      const std::string given = req.get_header_value("Authorization");
      if (given.compare(0, 7, "Bearer ") != 0 || !same_secret(given.substr(7), options.api_key)) {
        res.set_header("WWW-Authenticate", "Bearer");
        throw ApiError(401, given.empty() ? "missing API key: send \"Authorization: Bearer <key>\""
                                          : "invalid API key",
                       "", "invalid_api_key");
      }
    }
    if (req.method == "POST" && takes_json(req.path)) RequestGuard::check_json_content_type(req);
  } catch (const ApiError& error) {
    send_error(res, error);
    return httplib::Server::HandlerResponse::Handled;
  }
  return httplib::Server::HandlerResponse::Unhandled;
}

void HttpServer::Impl::setup() {
  http.set_payload_max_length(options.max_body_bytes);
  http.set_write_timeout(options.timeout_s, 0);
  http.set_keep_alive_max_count(100);
  http.set_keep_alive_timeout(5);

  http.set_pre_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) { return check_before_body(req, res); });
  http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                    httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string message = status_message(res.status);
    if (res.status == 404) message = "not found: " + req.method + " " + req.path;
    if (res.status == 413)
      message = "the request body exceeds the server's limit of " + std::to_string(options.max_body_bytes) + " bytes";
    res.set_content(error_body(res.status, message, "", res.status == 413 ? "request_too_large" : ""),
                    "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
    std::string what = "unknown exception";
    try {
      if (error) std::rethrow_exception(error);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    res.status = 500;
    res.set_content(error_body(500, "internal error: " + what, "", "internal_error"), "application/json");
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    metrics.count_response(res.status);
    if (options.verbose)
      std::fprintf(stderr, "serve: %s %s %s -> %d\n", req.remote_addr.c_str(), printable(req.method).c_str(),
                   printable(req.path).c_str(), res.status);
  });

  auto guarded = [this](void (Impl::*handler)(const httplib::Request&, httplib::Response&)) {
    return [this, handler](const httplib::Request& req, httplib::Response& res) {
      try {
        (this->*handler)(req, res);
      } catch (const ApiError& error) {
        send_error(res, error);
      } catch (const std::bad_alloc&) {
        send_error(res, ApiError(503, "the server ran out of memory for this request", "", "out_of_memory"));
      } catch (const std::exception& error) {
        send_error(res, ApiError(500, std::string("internal error: ") + error.what(), "", "internal_error"));
      }
    };
  };
  http.Post("/v1/chat/completions", guarded(&Impl::handle_chat));
  http.Post("/chat/completions", guarded(&Impl::handle_chat));
  auto models = [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(dump_json(models_json()), "application/json");
  };
  http.Get("/v1/models", models);
  http.Get("/models", models);
  http.Get("/lora-adapters", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(dump_json(adapters_json(adapters.list())), "application/json");
  });
  http.Post("/lora-adapters", guarded(&Impl::handle_lora_update));
  http.Post("/tokenize", guarded(&Impl::handle_tokenize));
  http.Post("/detokenize", guarded(&Impl::handle_detokenize));
  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(dump_json({{"status", "ok"},
                               {"slots_running", admission.running()},
                               {"slots_total", admission.slots()},
                               {"requests_waiting", admission.waiting()}}),
                    "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    Metrics::Gauges gauges;
    gauges.running = admission.running();
    gauges.waiting = admission.waiting();
    gauges.slots = admission.slots();
    gauges.cache = cache.stats();
    res.set_content(metrics.render(gauges), "text/plain; version=0.0.4; charset=utf-8");
  });
  auto page = [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kWebPage, kWebPageSize, "text/html; charset=utf-8");
  };
  http.Get("/", page);
  http.Get("/index.html", page);
}

HttpServer::HttpServer(const LoadedModel& model, const ServerOptions& options)
    : impl_(std::make_unique<Impl>(model, options)) {
  impl_->setup();
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::bind() {
  Impl& s = *impl_;
  s.port = s.options.port == 0 ? s.http.bind_to_any_port(s.options.host)
                               : (s.http.bind_to_port(s.options.host, s.options.port) ? s.options.port : -1);
  if (s.port < 0) throw_error("serve: cannot listen on ", s.options.host, ":", s.options.port);
  return s.port;
}

void HttpServer::run() {
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not end the process
  impl_->http.listen_after_bind();
}

void HttpServer::stop() {
  if (impl_->http.is_running()) impl_->http.stop();
}

bool HttpServer::running() const { return impl_->http.is_running(); }

}  // namespace server
}  // namespace qwen3vl
