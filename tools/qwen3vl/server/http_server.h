// `qwen3vl serve`: the OpenAI-compatible HTTP server (cpp-httplib) over one loaded checkpoint.
//   POST /v1/chat/completions (also /chat/completions), GET /v1/models (/models), GET and POST /lora-adapters,
//   GET /health, GET /metrics, GET /.
// The model is shared read-only; each request gets its own generation state (and LoRA adapter set,
// lora_registry.h). The engine never sees HTTP: requests go through ChatService (chat_service.h), which knows
// nothing of sockets either.
#pragma once

#include <memory>

#include "engine/loaded_model.h"
#include "server_options.h"

namespace qwen3vl {
namespace server {

class HttpServer {
 public:
  // Loads options.lora_adapters; throws Error naming the adapter at fault.
  HttpServer(const LoadedModel& model, const ServerOptions& options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds options.host:options.port (port 0: a free one) and returns the port. Throws Error when it cannot.
  int bind();
  // Serves until stop() is called (from any thread). bind() first.
  void run();
  void stop();
  // True once run() is accepting connections.
  bool running() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace server
}  // namespace qwen3vl
