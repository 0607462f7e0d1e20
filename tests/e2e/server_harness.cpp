#include "e2e/server_harness.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <sstream>

#include "test_util.h"

namespace qwen3vl {
namespace testing {

std::string tiny_model_dir() { return model_fixture("tiny-realtok-bf16"); }

const LoadedModel& tiny_model() {
  static const std::unique_ptr<LoadedModel> model = load_model(tiny_model_dir());
  return *model;
}

std::string image_fixture(const std::string& name) { return fixtures_dir() + "/multimodal/images/" + name; }

std::string data_url(const std::string& bytes, const std::string& mime) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out = "data:" + mime + ";base64,";
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(v >> shift) & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = uint8_t(bytes[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

ServerHarness::ServerHarness(server::ServerOptions options, const LoadedModel* model) : options_(std::move(options)) {
  options_.host = "127.0.0.1";
  options_.port = 0;
  if (options_.model_dir.empty()) options_.model_dir = tiny_model_dir();
  server_ = std::make_unique<server::HttpServer>(model ? *model : tiny_model(), options_);
  port_ = server_->bind();
  thread_ = std::thread([this] { server_->run(); });
  for (int i = 0; i < 500 && !server_->running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

ServerHarness::~ServerHarness() {
  for (int i = 0; i < 500 && !server_->running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  server_->stop();
  thread_.join();
}

httplib::Client ServerHarness::client(int read_timeout_s) const {
  httplib::Client client("127.0.0.1", port_);
  client.set_read_timeout(read_timeout_s, 0);
  client.set_write_timeout(60, 0);
  return client;
}

httplib::Result ServerHarness::chat(const nlohmann::json& body) const { return post_raw(body.dump()); }

httplib::Result ServerHarness::post_raw(const std::string& body, const httplib::Headers& headers) const {
  return client().Post("/v1/chat/completions", headers, body, "application/json");
}

nlohmann::json ServerHarness::get_json(const std::string& path) const {
  auto result = client().Get(path.c_str());
  if (!result) return nullptr;
  return nlohmann::json::parse(result->body, nullptr, false);
}

double ServerHarness::metric(const std::string& sample) const {
  auto result = client().Get("/metrics");
  if (!result) return -1;
  std::istringstream lines(result->body);
  std::string line;
  while (std::getline(lines, line))
    if (line.compare(0, sample.size() + 1, sample + " ") == 0) return std::stod(line.substr(sample.size() + 1));
  return -1;
}

nlohmann::json user_message(const std::string& text, const std::vector<std::string>& image_urls) {
  nlohmann::json content = nlohmann::json::array();
  for (const std::string& url : image_urls)
    content.push_back({{"type", "image_url"}, {"image_url", {{"url", url}}}});
  content.push_back({{"type", "text"}, {"text", text}});
  return {{"role", "user"}, {"content", content}};
}

SseStream parse_sse(const std::string& body) {
  SseStream stream;
  stream.raw = body;
  size_t from = 0;
  while (from < body.size()) {
    size_t end = body.find("\n\n", from);
    if (end == std::string::npos) end = body.size();
    const std::string event = body.substr(from, end - from);
    from = end + 2;
    if (event.compare(0, 6, "data: ") != 0) continue;
    const std::string data = event.substr(6);
    if (data == "[DONE]") {
      stream.done = true;
      continue;
    }
    stream.done = false;
    stream.events.push_back(nlohmann::json::parse(data, nullptr, false));
  }
  return stream;
}

nlohmann::json error_of(const httplib::Result& result) {
  if (!result) {
    ADD_FAILURE() << "no response: " << httplib::to_string(result.error());
    return nullptr;
  }
  const nlohmann::json body = nlohmann::json::parse(result->body, nullptr, false);
  EXPECT_TRUE(body.is_object() && body.contains("error")) << result->body;
  if (!body.is_object() || !body.contains("error")) return nullptr;
  const nlohmann::json& error = body["error"];
  for (const char* key : {"message", "type", "param", "code"}) EXPECT_TRUE(error.contains(key)) << result->body;
  EXPECT_TRUE(error["message"].is_string() && !error["message"].get<std::string>().empty());
  return error;
}

}  // namespace testing
}  // namespace qwen3vl
