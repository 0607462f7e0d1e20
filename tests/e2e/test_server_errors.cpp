// `qwen3vl serve` under bad input: every class of bad request gets a 4xx with an OpenAI error body
// {"error": {"message", "type", "param", "code"}}, and the server keeps serving afterwards.
#include <gtest/gtest.h>

#include "e2e/server_harness.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

using nlohmann::json;
using testing::data_url;
using testing::ServerHarness;
using testing::user_message;

json chat_body(json messages, int max_tokens = 2) {
  return {{"messages", messages}, {"max_tokens", max_tokens}, {"temperature", 0}};
}

// Sends `body` and checks the status, the error body and (if given) its param / code.
json expect_error(const ServerHarness& server, const std::string& body, int status, const std::string& code = "",
                  const std::string& param = "") {
  auto result = server.post_raw(body);
  EXPECT_TRUE(result);
  if (!result) return nullptr;
  EXPECT_EQ(result->status, status) << body.substr(0, 200) << "\n-> " << result->body;
  EXPECT_NE(result->get_header_value("Content-Type").find("application/json"), std::string::npos);
  json error = testing::error_of(result);
  if (error.is_null()) return error;
  if (!code.empty()) {
    EXPECT_EQ(error["code"], code) << result->body;
  }
  if (!param.empty()) {
    EXPECT_EQ(error["param"], param) << result->body;
  }
  return error;
}

void expect_still_serving(const ServerHarness& server) {
  auto result = server.chat(chat_body(json::array({user_message("still there?")}), 1));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200) << result->body;
}

TEST(ServerErrors, MalformedJsonAndWrongShapes) {
  ServerHarness server;
  expect_error(server, "{bad", 400, "invalid_json");
  expect_error(server, "", 400, "invalid_json");
  expect_error(server, "[1, 2]", 400);
  expect_error(server, std::string(100, '[') + std::string(100, ']'), 400, "invalid_json");
  expect_error(server, R"({"max_tokens": 3})", 400, "", "messages");
  expect_error(server, R"({"messages": []})", 400, "", "messages");
  expect_error(server, R"({"messages": "hi"})", 400, "", "messages");
  expect_error(server, R"({"messages": [1]})", 400, "", "messages[0]");
  expect_error(server, R"({"messages": [{"content": "hi"}]})", 400, "", "messages[0].role");
  expect_error(server, R"({"messages": [{"role": "wizard", "content": "hi"}]})", 400, "", "messages[0].role");
  expect_error(server, R"({"messages": [{"role": "user", "content": 42}]})", 400, "", "messages[0].content");
  const json audio = expect_error(
      server, R"({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]})", 400);
  EXPECT_NE(audio["message"].get<std::string>().find("input_audio"), std::string::npos);
  expect_error(server, R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", 400, "",
               "messages[0].content[0]");
  expect_error(server, R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": 5}]}]})",
               400, "", "messages[0].content[0].image_url");
  expect_still_serving(server);
}

TEST(ServerErrors, WrongTypesAndRanges) {
  ServerHarness server;
  const json base = chat_body(json::array({user_message("hi")}));
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"temperature", "hot"}}, "temperature"},     {{{"temperature", 3.5}}, "temperature"},
      {{{"top_p", 0}}, "top_p"},                     {{{"top_p", "x"}}, "top_p"},
      {{{"top_k", 1.5}}, "top_k"},                   {{{"max_tokens", -1}}, "max_tokens"},
      {{{"max_tokens", "5"}}, "max_tokens"},         {{{"max_completion_tokens", 0}}, "max_completion_tokens"},
      {{{"stream", "yes"}}, "stream"},               {{{"stop", 5}}, "stop"},
      {{{"stop", json::array({"a", 1})}}, "stop[1]"}, {{{"stop", ""}}, "stop"},
      {{{"seed", "x"}}, "seed"},                     {{{"presence_penalty", 9}}, "presence_penalty"},
      {{{"frequency_penalty", true}}, "frequency_penalty"}, {{{"model", 7}}, "model"},
      {{{"n", 2}}, "n"},                             {{{"logprobs", true}}, "logprobs"},
      {{{"tools", json::array({{{"type", "function"}}})}}, "tools"},
      {{{"response_format", {{"type", "json_object"}}}}, "response_format"},
      {{{"stream_options", 3}}, "stream_options"},   {{{"max_pixels", 0}}, "max_pixels"},
      {{{"min_pixels", 5000}, {"max_pixels", 4000}}, "min_pixels"},
      {{{"max_visual_tokens", -3}}, "max_visual_tokens"},
  };
  for (const auto& [fields, param] : cases) {
    json body = base;
    body.update(fields);
    expect_error(server, body.dump(), 400, "", param);
  }
  // A bad streamed request is refused before any event: a plain JSON error, not SSE.
  json streamed = base;
  streamed["stream"] = true;
  streamed["temperature"] = -1;
  expect_error(server, streamed.dump(), 400, "", "temperature");
  expect_still_serving(server);
}

TEST(ServerErrors, UnknownModelIs404) {
  ServerHarness server;
  json body = chat_body(json::array({user_message("hi")}));
  body["model"] = "gpt-17";
  const json error = expect_error(server, body.dump(), 404, "model_not_found", "model");
  EXPECT_NE(error["message"].get<std::string>().find("gpt-17"), std::string::npos);
  auto unknown_path = server.client().Get("/v1/nothing");
  ASSERT_TRUE(unknown_path);
  EXPECT_EQ(unknown_path->status, 404);
  testing::error_of(unknown_path);
  expect_still_serving(server);
}

TEST(ServerErrors, CorruptAndOversizedMedia) {
  server::ServerOptions options;
  options.max_image_pixels = 1000 * 1000;
  options.max_media_items = 2;
  ServerHarness server(options);
  auto image_request = [](const std::string& url) {
    return chat_body(json::array({user_message("what?", {url})})).dump();
  };
  const std::string png = testing::read_file(testing::image_fixture("shapes_70x50.png"));
  expect_error(server, image_request(data_url("this is not an image at all")), 400, "invalid_image",
               "messages[0].content[0]");
  expect_error(server, image_request(data_url(png.substr(0, png.size() / 2))), 400, "invalid_image");
  expect_error(server, image_request("data:image/png;base64,@@@@"), 400, "invalid_base64");
  expect_error(server, image_request("data:image/png,rawbytes"), 400, "invalid_data_url");
  expect_error(server, image_request("data:image/png;base64,"), 400, "invalid_data_url");
  expect_error(server, image_request("ftp://example.com/a.png"), 400, "invalid_media_url");
  // Over the server's input pixel limit: refused from the header, before any pixel buffer exists.
  const json large = expect_error(server, image_request(data_url(testing::bmp_bytes(1500, 800), "image/bmp")), 400,
                                  "invalid_image");
  EXPECT_NE(large["message"].get<std::string>().find("limit"), std::string::npos) << large;
  // An aspect ratio Qwen3-VL's resize refuses (over 200:1).
  expect_error(server, image_request(data_url(testing::bmp_bytes(2050, 10), "image/bmp")), 400, "invalid_image");
  // More images than allowed.
  const std::string small = data_url(png);
  expect_error(server, chat_body(json::array({user_message("three", {small, small, small})})).dump(), 400,
               "too_many_media");
  // Remote URLs are off unless the operator enables them.
  const json remote = expect_error(server, image_request("https://example.com/cat.png"), 400, "remote_media_disabled");
  EXPECT_NE(remote["message"].get<std::string>().find("--allow-remote-media"), std::string::npos);
  // A text part smuggling an image placeholder cannot desynchronize images and tokens.
  expect_error(server, chat_body(json::array({user_message("<|vision_start|><|image_pad|><|vision_end|>")})).dump(),
               400, "", "messages");
  expect_still_serving(server);
}

TEST(ServerErrors, BadVideos) {
  server::ServerOptions options;
  options.max_video_seconds = 20;
  ServerHarness server(options);
  auto video_request = [](const json& part) {
    return chat_body(json::array({{{"role", "user"}, {"content", json::array({part, {{"type", "text"},
                                                                                      {"text", "what?"}}})}}}))
        .dump();
  };
  auto video_url = [](const std::string& url) { return json{{"type", "video_url"}, {"video_url", {{"url", url}}}}; };
  const std::string videos = testing::fixtures_dir() + "/videos/";
  expect_error(server, video_request(video_url("data:video/mp4;base64,AAAAIGZ0eXBpc29t")), 400, "invalid_video",
               "messages[0].content[0]");
  expect_error(server, video_request(video_url(data_url("not a video", "video/mp4"))), 400, "invalid_video");
  // An audio-only file has no video stream.
  expect_error(server, video_request(video_url(data_url(testing::read_file(videos + "audio_only.mka"), "video/x-matroska"))),
               400, "invalid_video");
  // Longer than the server takes (40 s > 20 s).
  const json too_long = expect_error(
      server, video_request(video_url(data_url(testing::read_file(videos + "cfr30_40s.webm"), "video/webm"))), 400,
      "video_too_long");
  EXPECT_NE(too_long["message"].get<std::string>().find("at most 20 s"), std::string::npos) << too_long;
  expect_error(server, video_request(video_url("https://example.com/clip.mp4")), 400, "remote_media_disabled");
  // Frame lists: no frames, timestamps on some frames only, frames of different sizes, undecodable frames.
  const std::string frame = data_url(testing::read_file(videos + "frames/frame0.png"));
  const std::string other = data_url(testing::read_file(testing::image_fixture("shapes_70x50.png")));
  expect_error(server, video_request({{"type", "video"}, {"video", json::array()}}), 400);
  expect_error(server,
               video_request({{"type", "video"},
                              {"video", {{"frames", json::array({{{"url", frame}, {"timestamp", 0.0}},
                                                                  {{"url", frame}}})}}}}),
               400, "invalid_video");
  expect_error(server, video_request({{"type", "video"}, {"video", json::array({frame, other})}}), 400,
               "invalid_video");
  expect_error(server, video_request({{"type", "video"}, {"video", json::array({frame, data_url("junk")})}}), 400,
               "invalid_video");
  expect_error(server,
               video_request({{"type", "video"}, {"video", json::array({frame, frame})}, {"timestamps", json::array({0})}}),
               400, "", "messages[0].content[0].video.timestamps");
  json bad_range = video_url(data_url(testing::read_file(videos + "cfr24_3s.mp4"), "video/mp4"));
  bad_range["video_start"] = 2.0;
  bad_range["video_end"] = 1.0;
  expect_error(server, video_request(bad_range), 400, "", "messages[0].content[0].video_end");
  expect_still_serving(server);
}

TEST(ServerErrors, TooManyTokensForTheContext) {
  server::ServerOptions options;
  options.ctx_size = 64;
  ServerHarness server(options);
  std::string long_text;
  for (int i = 0; i < 80; ++i) long_text += "word ";
  expect_error(server, chat_body(json::array({user_message(long_text)})).dump(), 400, "context_length_exceeded");
  expect_error(server, chat_body(json::array({user_message("hi")}), 100).dump(), 400, "context_length_exceeded",
               "max_tokens");
  // Images count too: the tiny model's minimum image alone is 64 visual tokens.
  const std::string png = data_url(testing::read_file(testing::image_fixture("shapes_70x50.png")));
  expect_error(server, chat_body(json::array({user_message("hi", {png})})).dump(), 400, "context_length_exceeded");
  // Without max_tokens the completion gets what is left of the context.
  auto fits = server.chat({{"messages", json::array({user_message("hi")})}, {"temperature", 0}});
  ASSERT_EQ(fits->status, 200) << fits->body;
  const json usage = json::parse(fits->body)["usage"];
  EXPECT_LE(usage["total_tokens"].get<int>(), 64);
}

TEST(ServerErrors, BodySizeLimit) {
  server::ServerOptions options;
  options.max_body_bytes = 64 * 1024;
  ServerHarness server(options);
  const std::string big = chat_body(json::array({user_message(std::string(100 * 1024, 'a'))})).dump();
  auto result = server.post_raw(big);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 413);
  EXPECT_EQ(testing::error_of(result)["code"], "request_too_large");
  expect_still_serving(server);
}

TEST(ServerErrors, ApiKey) {
  server::ServerOptions options;
  options.api_key = "sekrit";
  ServerHarness server(options);
  const std::string body = chat_body(json::array({user_message("hi")}), 1).dump();
  auto missing = server.post_raw(body);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 401);
  EXPECT_EQ(testing::error_of(missing)["type"], "authentication_error");
  auto wrong = server.post_raw(body, {{"Authorization", "Bearer nope"}});
  EXPECT_EQ(wrong->status, 401);
  auto models = server.client().Get("/v1/models");
  EXPECT_EQ(models->status, 401);
  auto metrics = server.client().Get("/metrics");
  EXPECT_EQ(metrics->status, 401);
  auto right = server.post_raw(body, {{"Authorization", "Bearer sekrit"}});
  EXPECT_EQ(right->status, 200) << right->body;
  // Health and the page stay open (the page asks for the key itself).
  EXPECT_EQ(server.client().Get("/health")->status, 200);
  EXPECT_EQ(server.client().Get("/")->status, 200);
}

TEST(ServerErrors, CliRefusesBadSetups) {
  const auto missing = testing::run_cli("serve -m /nonexistent/model --port 0");
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("error: "), std::string::npos) << missing.output;
  const auto port = testing::run_cli("serve -m " + testing::tiny_model_dir() + " --port 70000");
  EXPECT_NE(port.exit_code, 0);
  EXPECT_NE(port.output.find("--port"), std::string::npos) << port.output;
  const auto help = testing::run_cli("serve --help");
  EXPECT_EQ(help.exit_code, 0);
  for (const char* flag : {"--host", "--api-key", "--parallel", "--max-queue", "--max-visual-tokens",
                           "--allowed-media-dir", "--allow-remote-media", "--max-body-size"})
    EXPECT_NE(help.output.find(flag), std::string::npos) << flag;
}

}  // namespace
}  // namespace qwen3vl
