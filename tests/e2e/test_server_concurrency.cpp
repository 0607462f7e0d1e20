// `qwen3vl serve` with several requests at once: independent generations give the same replies as one at a time,
// a full queue answers 503 with Retry-After, queued requests wait their turn, and a client that disconnects (while
// streaming, while waiting for a non-streamed reply) has its generation cancelled and its slot freed.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "e2e/server_harness.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

using nlohmann::json;
using testing::ServerHarness;
using testing::user_message;

json long_request(bool stream) {
  return {{"messages", json::array({user_message("Write a very long story")})},
          {"max_tokens", 4000},
          {"temperature", 0},
          {"stream", stream}};
}

// Waits until metric(sample) == value (or 10 s pass); returns the last value seen.
double wait_for_metric(const ServerHarness& server, const std::string& sample, double value) {
  double seen = -1;
  for (int i = 0; i < 200; ++i) {
    seen = server.metric(sample);
    if (seen == value) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return seen;
}

// A streaming request that occupies a slot: it reads until released, then hangs up mid-stream.
class HeldStream {
 public:
  explicit HeldStream(const ServerHarness& server) {
    thread_ = std::thread([this, &server] {
      httplib::Client client = server.client();
      httplib::Request request;
      request.method = "POST";
      request.path = "/v1/chat/completions";
      request.body = long_request(true).dump();
      request.set_header("Content-Type", "application/json");
      request.content_receiver = [this](const char*, size_t, uint64_t, uint64_t) {
        started_ = true;
        return !released_.load();
      };
      client.send(request);
    });
    for (int i = 0; i < 400 && !started_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ~HeldStream() { release(); }
  bool started() const { return started_; }
  void release() {
    released_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> started_{false}, released_{false};
  std::thread thread_;
};

TEST(ServerConcurrency, ParallelRequestsMatchSerialReplies) {
  server::ServerOptions options;
  options.parallel = 3;
  ServerHarness server(options);
  const std::string image = testing::data_url(testing::read_file(testing::image_fixture("shapes_70x50.png")));
  auto request = [&](int k) {
    json messages = json::array({k % 2 ? user_message("Question " + std::to_string(k), {image})
                                       : user_message("Question " + std::to_string(k))});
    return json{{"messages", messages}, {"max_tokens", 6}, {"temperature", 0}};
  };
  std::vector<std::string> serial(6);
  for (int k = 0; k < 6; ++k) serial[k] = server.chat(request(k))->body;
  std::vector<std::string> parallel(6);
  std::vector<std::thread> threads;
  for (int k = 0; k < 6; ++k) threads.emplace_back([&, k] { parallel[k] = server.chat(request(k))->body; });
  for (auto& thread : threads) thread.join();
  for (int k = 0; k < 6; ++k) {
    const json a = json::parse(serial[k]), b = json::parse(parallel[k], nullptr, false);
    ASSERT_TRUE(b.is_object() && b.contains("choices")) << parallel[k];
    EXPECT_EQ(a["choices"][0]["message"]["content"], b["choices"][0]["message"]["content"]) << k;
  }
}

TEST(ServerConcurrency, FullQueueAnswers503AndDisconnectCancels) {
  server::ServerOptions options;
  options.parallel = 1;
  options.max_queue = 0;
  options.retry_after_s = 2;
  ServerHarness server(options);
  HeldStream held(server);
  ASSERT_TRUE(held.started());
  EXPECT_EQ(server.metric("qwen3vl_requests_running"), 1);
  auto busy = server.chat({{"messages", json::array({user_message("me too")})}, {"max_tokens", 1}});
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status, 503);
  EXPECT_EQ(busy->get_header_value("Retry-After"), "2");
  EXPECT_EQ(testing::error_of(busy)["code"], "server_busy");
  EXPECT_EQ(server.metric("qwen3vl_requests_rejected_total"), 1);
  // The streaming client hangs up: its generation stops long before 4000 tokens and the slot frees.
  held.release();
  EXPECT_EQ(wait_for_metric(server, "qwen3vl_completions_cancelled_total", 1), 1);
  EXPECT_EQ(wait_for_metric(server, "qwen3vl_requests_running", 0), 0);
  auto after = server.chat({{"messages", json::array({user_message("now?")})}, {"max_tokens", 1}});
  EXPECT_EQ(after->status, 200) << after->body;
}

TEST(ServerConcurrency, QueuedRequestsWaitTheirTurn) {
  server::ServerOptions options;
  options.parallel = 1;
  options.max_queue = 1;
  ServerHarness server(options);
  HeldStream held(server);
  ASSERT_TRUE(held.started());
  int queued_status = 0;
  std::string queued_body;
  std::thread queued([&] {
    auto result = server.chat({{"messages", json::array({user_message("queued")})}, {"max_tokens", 2}});
    if (result) {
      queued_status = result->status;
      queued_body = result->body;
    }
  });
  EXPECT_EQ(wait_for_metric(server, "qwen3vl_requests_waiting", 1), 1);
  auto rejected = server.chat({{"messages", json::array({user_message("third")})}, {"max_tokens", 1}});
  EXPECT_EQ(rejected->status, 503);
  held.release();
  queued.join();
  EXPECT_EQ(queued_status, 200) << queued_body;
}

TEST(ServerConcurrency, NonStreamedRequestIsCancelledWhenTheClientLeaves) {
  ServerHarness server;
  auto client = server.client(/*read_timeout_s=*/1);
  auto result = client.Post("/v1/chat/completions", long_request(false).dump(), "application/json");
  EXPECT_FALSE(result);  // the client gave up after 1 s
  EXPECT_EQ(wait_for_metric(server, "qwen3vl_completions_cancelled_total", 1), 1);
  EXPECT_EQ(wait_for_metric(server, "qwen3vl_requests_running", 0), 0);
  EXPECT_EQ(server.metric("qwen3vl_completions_total"), 0);
}

}  // namespace
}  // namespace qwen3vl
