// Who may talk to `qwen3vl serve`: Host and Origin allow-lists (DNS rebinding, cross-site requests), the JSON
// content type, the API key from a file; and client numbers that must not overflow (review m1, 1.7).
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <vector>

#include "core/error.h"
#include "e2e/server_harness.h"
#include "engine/generate.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

using nlohmann::json;
using testing::ServerHarness;
using testing::user_message;

std::string hello_body() {
  return json({{"messages", json::array({user_message("hello")})}, {"max_tokens", 1}}).dump();
}

int get_status(const ServerHarness& server, const std::string& path, const httplib::Headers& headers) {
  auto result = server.client().Get(path.c_str(), headers);
  return result ? result->status : -1;
}

int chat_status(const ServerHarness& server, const httplib::Headers& headers,
                const std::string& content_type = "application/json") {
  auto result = server.client().Post("/v1/chat/completions", headers, hello_body(), content_type.c_str());
  return result ? result->status : -1;
}

TEST(ServerAccess, ForeignHostIsRefused) {
  ServerHarness server;
  const std::string port = std::to_string(server.port());
  for (const std::string& host : std::vector<std::string>{"evil.example", "evil.example:" + port, "127.0.0.1.evil.example:" + port,
                                  "localhost:" + port + "x"}) {
    auto result = server.client().Get("/v1/models", {{"Host", host}});
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 403) << host;
    EXPECT_EQ(testing::error_of(result)["code"], "host_not_allowed");
    EXPECT_EQ(chat_status(server, {{"Host", host}}), 403) << host;
    EXPECT_EQ(get_status(server, "/", {{"Host", host}}), 403) << host;
  }
  for (const std::string& host : std::vector<std::string>{"localhost", "localhost:" + port, "LOCALHOST:" + port, "127.0.0.1",
                                  "127.0.0.1:" + port, "[::1]:" + port})
    EXPECT_EQ(get_status(server, "/v1/models", {{"Host", host}}), 200) << host;
  EXPECT_EQ(get_status(server, "/health", {{"Host", "prober.internal:9000"}}), 200);  // probes keep working
}

TEST(ServerAccess, AllowedHostsAreConfigurable) {
  server::ServerOptions options;
  options.allowed_hosts = {"chat.example.com", "box.lan:8443"};
  ServerHarness server(options);
  EXPECT_EQ(get_status(server, "/v1/models", {{"Host", "chat.example.com"}}), 200);
  EXPECT_EQ(get_status(server, "/v1/models", {{"Host", "chat.example.com:1234"}}), 200);
  EXPECT_EQ(get_status(server, "/v1/models", {{"Host", "box.lan:8443"}}), 200);
  EXPECT_EQ(get_status(server, "/v1/models", {{"Host", "box.lan:8080"}}), 403);
  EXPECT_EQ(get_status(server, "/v1/models", {{"Host", "evil.example"}}), 403);

  server::ServerOptions any;
  any.allowed_hosts = {"*"};
  ServerHarness open(any);
  EXPECT_EQ(get_status(open, "/v1/models", {{"Host", "evil.example"}}), 200);
}

TEST(ServerAccess, ForeignOriginIsRefused) {
  server::ServerOptions options;
  options.allowed_origins = {"https://chat.example.com/"};
  ServerHarness server(options);
  const std::string self = "127.0.0.1:" + std::to_string(server.port());
  for (const char* origin : {"http://evil.example", "null", "https://chat.example.com.evil.example"}) {
    auto result = server.client().Post("/v1/chat/completions", {{"Origin", origin}}, hello_body(), "application/json");
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 403) << origin;
    EXPECT_EQ(testing::error_of(result)["code"], "origin_not_allowed");
  }
  EXPECT_EQ(chat_status(server, {{"Origin", "http://" + self}}), 200);  // the page served by this server
  EXPECT_EQ(chat_status(server, {{"Origin", "https://chat.example.com"}}), 200);
  EXPECT_EQ(chat_status(server, {}), 200);  // no Origin: not a browser
}

TEST(ServerAccess, JsonEndpointsNeedTheJsonContentType) {
  ServerHarness server;
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                           "application/jsonp"}) {
    auto result = server.client().Post("/v1/chat/completions", hello_body(), type);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 415) << type;
    EXPECT_EQ(testing::error_of(result)["code"], "unsupported_media_type");
  }
  EXPECT_EQ(chat_status(server, {}, "application/json; charset=utf-8"), 200);
  EXPECT_EQ(chat_status(server, {}, "Application/JSON"), 200);
}

TEST(ServerAccess, ApiKeyFileIsReadAndItsAbsenceIsOneErrorLine) {
  const testing::CommandResult missing =
      testing::run_cli("serve -m " + testing::tiny_model_dir() + " --api-key-file /nonexistent/key --port 0");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.output, "error: /nonexistent/key: cannot read the API key file\n");

  testing::TempDir dir;
  testing::write_file(dir.file("key"), "  \n");
  const testing::CommandResult empty =
      testing::run_cli("serve -m " + testing::tiny_model_dir() + " --api-key-file " + dir.file("key") + " --port 0");
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_NE(empty.output.find("the API key file is empty"), std::string::npos) << empty.output;
}

// Review m1: max_tokens up to INT64_MAX is accepted by the parser; the context check must not overflow.
TEST(ServerAccess, HugeMaxTokensIsAContextErrorWithoutOverflow) {
  ServerHarness server;
  const int64_t huge = std::numeric_limits<int64_t>::max();
  auto result = server.chat({{"messages", json::array({user_message("hello")})}, {"max_tokens", huge}});
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400);
  const json error = testing::error_of(result);
  EXPECT_EQ(error["code"], "context_length_exceeded");
  const std::string message = error["message"];
  EXPECT_NE(message.find(std::to_string(huge) + " in the completion"), std::string::npos) << message;
  EXPECT_EQ(message.find("requested -"), std::string::npos) << message;
}

// The same pattern in the engine (the CLI's -n): refused with the context error.
TEST(ServerAccess, HugeMaxNewTokensIsRefusedByGenerate) {
  GenerationRequest request;
  request.prompt_ids = {1, 2, 3};
  request.max_new_tokens = std::numeric_limits<int64_t>::max();
  try {
    generate(testing::tiny_model(), request, nullptr);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("exceed the model's context"), std::string::npos) << error.what();
  }
}

// Review 1.7: text far longer than the context is refused before it is tokenized.
TEST(ServerAccess, TextFarBeyondTheContextIsRefusedBeforeTokenizing) {
  server::ServerOptions options;
  options.ctx_size = 256;
  ServerHarness server(options);
  auto result = server.chat({{"messages", json::array({user_message(std::string(256 * 16 + 1, 'a'))})}});
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400);
  const json error = testing::error_of(result);
  EXPECT_EQ(error["code"], "context_length_exceeded");
  EXPECT_NE(error["message"].get<std::string>().find("bytes of text"), std::string::npos) << error;
}

}  // namespace
}  // namespace qwen3vl
