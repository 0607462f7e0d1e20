// Test harness for `qwen3vl serve`: the HTTP server in-process on an ephemeral loopback port, over the tiny
// real-tokenizer checkpoint (loaded once per test process), plus helpers for requests, SSE streams and images.
#pragma once

#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "engine/loaded_model.h"
#include "server/http_server.h"
#include "server/server_options.h"
#include "test_util.h"

namespace qwen3vl {
namespace testing {

const LoadedModel& tiny_model();               // tests/fixtures/models/tiny-realtok-bf16
std::string tiny_model_dir();
std::string image_fixture(const std::string& name);  // tests/fixtures/multimodal/images/NAME
std::string data_url(const std::string& bytes, const std::string& mime = "image/png");

class ServerHarness {
 public:
  explicit ServerHarness(server::ServerOptions options = {}, const LoadedModel* model = nullptr);
  ~ServerHarness();

  int port() const { return port_; }
  httplib::Client client(int read_timeout_s = 60) const;

  // POST /v1/chat/completions with a JSON body (or raw text).
  httplib::Result chat(const nlohmann::json& body) const;
  httplib::Result post_raw(const std::string& body, const httplib::Headers& headers = {}) const;
  nlohmann::json get_json(const std::string& path) const;
  // The value of a Prometheus sample line "NAME VALUE" (or NAME{labels}), -1 when absent.
  double metric(const std::string& sample) const;

 private:
  server::ServerOptions options_;
  std::unique_ptr<server::HttpServer> server_;
  std::thread thread_;
  int port_ = -1;
};

// One user message: images (data URLs) first, then the text.
nlohmann::json user_message(const std::string& text, const std::vector<std::string>& image_urls = {});

struct SseStream {
  std::vector<nlohmann::json> events;  // parsed "data: {...}" events, in order
  bool done = false;                   // "data: [DONE]" came last
  std::string raw;
};
SseStream parse_sse(const std::string& body);

// The OpenAI error object of a response, checked for the required keys.
nlohmann::json error_of(const httplib::Result& result);

}  // namespace testing
}  // namespace qwen3vl
