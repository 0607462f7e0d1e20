// `qwen3vl serve`: every request shape of POST /v1/chat/completions on the tiny real-tokenizer checkpoint (text,
// data: URL images, local files, videos as files and as frame lists, per-request pixel budgets, sampling options,
// stop strings, streaming with usage, Thinking checkpoints), the image-embedding cache, GET /v1/models, /health,
// /metrics and the web page.
#include <gtest/gtest.h>

#include <filesystem>

#include "e2e/server_harness.h"
#include "server/chat_service.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

using nlohmann::json;
using testing::data_url;
using testing::image_fixture;
using testing::read_file;
using testing::ServerHarness;
using testing::user_message;

std::string png(const std::string& name) { return data_url(read_file(image_fixture(name))); }

json greedy(json messages, int max_tokens = 6) {
  return {{"model", "tiny-realtok-bf16"}, {"messages", messages}, {"max_tokens", max_tokens}, {"temperature", 0}};
}

std::string content_of(const httplib::Result& result) {
  EXPECT_TRUE(result);
  if (!result) return "";
  EXPECT_EQ(result->status, 200) << result->body;
  const json body = json::parse(result->body);
  return body["choices"][0]["message"]["content"].get<std::string>();
}

TEST(ServerApi, ModelsHealthMetricsAndPage) {
  ServerHarness server;
  const json models = server.get_json("/v1/models");
  ASSERT_EQ(models["object"], "list");
  ASSERT_EQ(models["data"].size(), 1u);
  EXPECT_EQ(models["data"][0]["id"], "tiny-realtok-bf16");
  EXPECT_EQ(models["data"][0]["object"], "model");
  EXPECT_EQ(models["data"][0]["meta"]["vision"], true);
  EXPECT_EQ(server.get_json("/health")["status"], "ok");
  auto metrics = server.client().Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  EXPECT_NE(metrics->body.find("# TYPE qwen3vl_completions_total counter"), std::string::npos);
  EXPECT_GT(server.metric("process_resident_memory_bytes"), 0);
  auto page = server.client().Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  EXPECT_NE(page->body.find("id=\"prompt\""), std::string::npos);
  EXPECT_NE(page->body.find("/v1/chat/completions"), std::string::npos);
}

TEST(ServerApi, TextCompletionHasTheOpenAIShape) {
  ServerHarness server;
  auto result = server.chat(greedy(json::array({{{"role", "system"}, {"content", "Be brief."}},
                                                {{"role", "user"}, {"content", "Hello there"}}}),
                                   5));
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  EXPECT_NE(result->get_header_value("Content-Type").find("application/json"), std::string::npos);
  const json body = json::parse(result->body);
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(body["model"], "tiny-realtok-bf16");
  EXPECT_TRUE(body["created"].is_number_integer());
  ASSERT_EQ(body["choices"].size(), 1u);
  const json& choice = body["choices"][0];
  EXPECT_EQ(choice["index"], 0);
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_FALSE(choice["message"]["content"].get<std::string>().empty());
  EXPECT_FALSE(choice["message"].contains("reasoning_content"));  // an Instruct checkpoint
  EXPECT_EQ(choice["finish_reason"], "length");
  const json& usage = body["usage"];
  EXPECT_EQ(usage["completion_tokens"], 5);
  EXPECT_GT(usage["prompt_tokens"].get<int>(), 5);
  EXPECT_EQ(usage["total_tokens"], usage["prompt_tokens"].get<int>() + 5);
  EXPECT_EQ(usage["prompt_tokens_details"]["image_tokens"], 0);
  // Greedy is deterministic; a string content and the same text as a list of text parts render alike.
  EXPECT_EQ(content_of(server.chat(greedy(json::array({user_message("Hello there")}), 5))),
            content_of(server.chat(greedy(json::array({{{"role", "user"}, {"content", "Hello there"}}}), 5))));
}

TEST(ServerApi, SamplingOptionsAndSeeds) {
  ServerHarness server;
  json request = {{"messages", json::array({user_message("Tell me a story")})},
                  {"max_completion_tokens", 8},
                  {"temperature", 1.2},
                  {"top_p", 0.9},
                  {"top_k", 40},
                  {"seed", 1234},
                  {"presence_penalty", 0.5},
                  {"frequency_penalty", 0.3}};
  const std::string first = content_of(server.chat(request));
  EXPECT_EQ(content_of(server.chat(request)), first) << "the same seed must give the same sample";
  auto result = server.chat(request);
  ASSERT_TRUE(result);
  EXPECT_EQ(json::parse(result->body)["usage"]["completion_tokens"], 8);  // max_completion_tokens is honoured
  request["seed"] = 99;
  request["max_tokens"] = 3;  // max_completion_tokens wins over max_tokens
  EXPECT_EQ(json::parse(server.chat(request)->body)["usage"]["completion_tokens"], 8);
  request.erase("max_completion_tokens");
  EXPECT_EQ(json::parse(server.chat(request)->body)["usage"]["completion_tokens"], 3);
  // null means "not given" (some clients send every field).
  request["top_k"] = nullptr;
  request["stop"] = nullptr;
  EXPECT_EQ(server.chat(request)->status, 200);
}

TEST(ServerApi, StopStringsCutTheReply) {
  ServerHarness server;
  const json messages = json::array({user_message("Count with me")});
  const std::string full = content_of(server.chat(greedy(messages, 12)));
  ASSERT_GE(full.size(), 4u);
  // A stop string taken from the middle of the greedy reply: the reply ends right before it.
  auto char_start = [&](size_t at) {  // move to the start of a UTF-8 character
    while (at < full.size() && (static_cast<unsigned char>(full[at]) & 0xC0) == 0x80) ++at;
    return at;
  };
  const size_t cut = char_start(full.size() / 2);
  ASSERT_LT(cut, full.size());
  const std::string stop = full.substr(cut, char_start(cut + 1) - cut);
  const size_t first = full.find(stop);
  json request = greedy(messages, 12);
  request["stop"] = stop;
  auto result = server.chat(request);
  ASSERT_EQ(result->status, 200) << result->body;
  json body = json::parse(result->body);
  EXPECT_EQ(body["choices"][0]["message"]["content"], full.substr(0, first));
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  request["stop"] = json::array({"never appears", stop});
  EXPECT_EQ(content_of(server.chat(request)), full.substr(0, first));
}

TEST(ServerApi, StreamingSendsChunksUsageAndDone) {
  ServerHarness server;
  const json messages = json::array({user_message("Stream this")});
  const std::string expected = content_of(server.chat(greedy(messages, 8)));
  json request = greedy(messages, 8);
  request["stream"] = true;
  request["stream_options"] = {{"include_usage", true}};
  auto result = server.chat(request);
  ASSERT_TRUE(result);
  ASSERT_EQ(result->status, 200) << result->body;
  EXPECT_NE(result->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  const auto stream = testing::parse_sse(result->body);
  ASSERT_TRUE(stream.done) << stream.raw;
  ASSERT_GE(stream.events.size(), 4u) << stream.raw;
  EXPECT_EQ(stream.events.front()["choices"][0]["delta"]["role"], "assistant");
  std::string text;
  std::string finish;
  int content_chunks = 0;
  for (const json& event : stream.events) {
    EXPECT_EQ(event["object"], "chat.completion.chunk");
    EXPECT_EQ(event["id"], stream.events.front()["id"]);
    for (const json& choice : event["choices"]) {
      if (choice["delta"].contains("content") && !choice["delta"]["content"].get<std::string>().empty()) {
        text += choice["delta"]["content"].get<std::string>();
        ++content_chunks;
      }
      if (!choice["finish_reason"].is_null()) finish = choice["finish_reason"];
    }
  }
  EXPECT_EQ(text, expected);
  EXPECT_GT(content_chunks, 1) << "the reply must arrive in pieces";
  EXPECT_EQ(finish, "length");
  const json& last = stream.events.back();
  EXPECT_TRUE(last["choices"].empty());
  EXPECT_EQ(last["usage"]["completion_tokens"], 8);
  // Without include_usage there is no usage chunk.
  request.erase("stream_options");
  const auto plain = testing::parse_sse(server.chat(request)->body);
  ASSERT_TRUE(plain.done);
  for (const json& event : plain.events) EXPECT_FALSE(event.contains("usage"));
}

TEST(ServerApi, ImageDataUrlCountsVisualTokensAndHitsTheCache) {
  ServerHarness server;
  const json messages = json::array({user_message("What is in the image?", {png("shapes_150x97.png")})});
  auto first = server.chat(greedy(messages));
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200) << first->body;
  const json a = json::parse(first->body);
  const int64_t visual = a["usage"]["prompt_tokens_details"]["image_tokens"];
  EXPECT_GT(visual, 0);
  EXPECT_GT(a["usage"]["prompt_tokens"].get<int64_t>(), visual);
  ASSERT_EQ(a["images"].size(), 1u);
  EXPECT_EQ(a["images"][0]["width"], 150);
  EXPECT_EQ(a["images"][0]["height"], 97);
  EXPECT_EQ(a["images"][0]["visual_tokens"], visual);
  EXPECT_FALSE(a["images"][0].contains("cached"));  // would tell a client about other clients' images
  EXPECT_EQ(server.metric("qwen3vl_image_cache_misses_total"), 1);

  // The same image again (inside another conversation): its vision output comes from the cache, same reply.
  const json again = json::array({{{"role", "system"}, {"content", "You see images."}},
                                  user_message("What is in the image?", {png("shapes_150x97.png")})});
  const json b = json::parse(server.chat(greedy(again))->body);
  EXPECT_FALSE(b["images"][0].contains("cached"));
  EXPECT_EQ(server.metric("qwen3vl_image_cache_hits_total"), 1);
  EXPECT_EQ(server.metric("qwen3vl_image_cache_entries"), 1);
  const json c = json::parse(server.chat(greedy(messages))->body);
  EXPECT_EQ(c["choices"][0]["message"]["content"], a["choices"][0]["message"]["content"]);
  EXPECT_EQ(server.metric("qwen3vl_image_cache_hits_total"), 2);

  // A different image with the same size: a different key (content, not token ids).
  const json other = json::parse(server.chat(greedy(json::array({user_message(
      "What is in the image?", {data_url(testing::bmp_bytes(150, 97), "image/bmp")})})))->body);
  EXPECT_EQ(server.metric("qwen3vl_image_cache_misses_total"), 2);
  EXPECT_EQ(other["usage"]["prompt_tokens_details"]["image_tokens"], visual);

  // Several images in one message, and the qwen-vl-utils {"type": "image", "image": ...} spelling.
  const json two = {{"role", "user"},
                    {"content", json::array({{{"type", "image"}, {"image", png("shapes_70x50.png")}},
                                             {{"type", "text"}, {"text", "and"}},
                                             {{"type", "image_url"}, {"image_url", png("shapes_240x60.png")}},
                                             {{"type", "text"}, {"text", "compare"}}})}};
  const json d = json::parse(server.chat(greedy(json::array({two})))->body);
  ASSERT_EQ(d["images"].size(), 2u);
  EXPECT_EQ(d["images"][0]["width"], 70);
  EXPECT_EQ(d["images"][1]["width"], 240);
  EXPECT_EQ(d["usage"]["prompt_tokens_details"]["image_tokens"],
            d["images"][0]["visual_tokens"].get<int>() + d["images"][1]["visual_tokens"].get<int>());
}

TEST(ServerApi, PixelBudgetsPerRequestPerImageAndInTotal) {
  ServerHarness server;
  const std::string image = png("shapes_240x60.png");
  auto tokens = [&](json request) {
    auto result = server.chat(request);
    EXPECT_EQ(result->status, 200) << result->body;
    return json::parse(result->body)["usage"]["prompt_tokens_details"]["image_tokens"].get<int64_t>();
  };
  const json messages = json::array({user_message("Describe", {image})});
  const int64_t default_tokens = tokens(greedy(messages, 1));
  json small = greedy(messages, 1);
  small["max_pixels"] = 32 * 32 * 8;  // at most 8 merged tokens
  small["min_pixels"] = 32 * 32;
  const int64_t small_tokens = tokens(small);
  EXPECT_LE(small_tokens, 8);
  EXPECT_LT(small_tokens, default_tokens);
  json vllm = greedy(messages, 1);
  vllm["mm_processor_kwargs"] = {{"max_pixels", 32 * 32 * 8}, {"min_pixels", 32 * 32}};
  EXPECT_EQ(tokens(vllm), small_tokens);
  // Per image (image_url.max_pixels) wins over the request's.
  json per_image = greedy(json::array({{{"role", "user"},
                                        {"content", json::array({{{"type", "image_url"},
                                                                  {"image_url", {{"url", image},
                                                                                 {"max_pixels", 32 * 32 * 4},
                                                                                 {"min_pixels", 32 * 32}}}},
                                                                 {{"type", "text"}, {"text", "Describe"}}})}}}),
                          1);
  per_image["max_pixels"] = 32 * 32 * 64;
  EXPECT_LE(tokens(per_image), 4);
  // A total budget for all images: two images are shrunk together to fit.
  json both = greedy(json::array({user_message("Compare", {image, png("shapes_150x97.png")})}), 1);
  const int64_t natural = tokens(both);
  both["max_visual_tokens"] = natural / 3;
  const int64_t fitted = tokens(both);
  EXPECT_LE(fitted, natural / 3);
  EXPECT_GT(fitted, 0);
  // detail "low" caps an image at 256 tokens; this one is far smaller already.
  json low = greedy(json::array({{{"role", "user"},
                                  {"content", json::array({{{"type", "image_url"},
                                                            {"image_url", {{"url", image}, {"detail", "low"}}}}})}}}),
                    1);
  EXPECT_EQ(tokens(low), default_tokens);
}

TEST(ServerApi, VideosAsFilesAndAsFrameLists) {
  ServerHarness server;
  const std::string videos = testing::fixtures_dir() + "/videos/";
  const std::string mp4 = data_url(read_file(videos + "cfr24_3s.mp4"), "video/mp4");
  auto ask = [&](const json& part, json extra = json::object()) {
    json request = greedy(json::array({{{"role", "user"},
                                        {"content", json::array({part, {{"type", "text"}, {"text", "What happens?"}}})}}}),
                          4);
    request.update(extra);
    auto result = server.chat(request);
    EXPECT_EQ(result->status, 200) << result->body;
    return json::parse(result->body);
  };
  // A video file as a base64 data: URL (sampled at 2 fps, as transformers does).
  const json file = ask({{"type", "video_url"}, {"video_url", {{"url", mp4}}}});
  ASSERT_EQ(file["videos"].size(), 1u) << file;
  EXPECT_GT(file["videos"][0]["frames"].get<int>(), 1);
  const int64_t video_tokens = file["usage"]["prompt_tokens_details"]["video_tokens"];
  EXPECT_EQ(file["videos"][0]["visual_tokens"], video_tokens);
  EXPECT_GT(video_tokens, 0);
  EXPECT_EQ(file["usage"]["prompt_tokens_details"]["image_tokens"], 0);
  // Sampling options of the part: fewer frames, fewer tokens.
  const json two = ask({{"type", "video_url"}, {"video_url", {{"url", mp4}}}, {"nframes", 2}});
  EXPECT_EQ(two["videos"][0]["frames"], 2);
  EXPECT_LT(two["usage"]["prompt_tokens_details"]["video_tokens"].get<int64_t>(), video_tokens);
  // A frame list with timestamps, in both spellings.
  std::vector<std::string> frames;
  for (int i = 0; i < 4; ++i) frames.push_back(data_url(read_file(videos + "frames/frame" + std::to_string(i) + ".png")));
  const json listed = ask({{"type", "video"}, {"video", frames}, {"timestamps", json::array({0.0, 0.5, 1.0, 1.5})}});
  EXPECT_EQ(listed["videos"][0]["frames"], 4);
  EXPECT_EQ(listed["videos"][0]["width"], 80);
  json objects = json::array();
  for (size_t i = 0; i < frames.size(); ++i) objects.push_back({{"url", frames[i]}, {"timestamp", 0.5 * i}});
  const json as_objects = ask({{"type", "video"}, {"video", {{"frames", objects}}}});
  EXPECT_EQ(as_objects["choices"][0]["message"]["content"], listed["choices"][0]["message"]["content"]);
  EXPECT_EQ(as_objects["usage"], listed["usage"]);
  // Other times are other <t.t seconds> stamps in the prompt, so (usually) other tokens: at least the same count.
  const json slow = ask({{"type", "video"}, {"video", frames}, {"timestamps", json::array({0.0, 10.0, 20.0, 30.0})}});
  EXPECT_EQ(slow["usage"]["prompt_tokens_details"]["video_tokens"], listed["usage"]["prompt_tokens_details"]["video_tokens"]);
  // The total visual-token budget covers videos too: the video shrinks to fit.
  const json fitted = ask({{"type", "video_url"}, {"video_url", {{"url", mp4}}}}, {{"max_visual_tokens", video_tokens / 2}});
  EXPECT_LE(fitted["usage"]["prompt_tokens_details"]["video_tokens"].get<int64_t>(), video_tokens / 2);
  // An image and a video in one message, streamed.
  json mixed = greedy(json::array({{{"role", "user"},
                                    {"content", json::array({{{"type", "image_url"}, {"image_url", {{"url", png("shapes_70x50.png")}}}},
                                                             {{"type", "video_url"}, {"video_url", {{"url", mp4}}}},
                                                             {{"type", "text"}, {"text", "Compare"}}})}}}),
                      4);
  mixed["stream"] = true;
  mixed["stream_options"] = {{"include_usage", true}};
  const auto stream = testing::parse_sse(server.chat(mixed)->body);
  ASSERT_TRUE(stream.done) << stream.raw;
  const json usage = stream.events.back()["usage"];
  EXPECT_GT(usage["prompt_tokens_details"]["image_tokens"].get<int>(), 0);
  EXPECT_EQ(usage["prompt_tokens_details"]["video_tokens"], video_tokens);
  EXPECT_EQ(server.metric("qwen3vl_videos_total"), 7);
}

TEST(ServerApi, LocalFilesOnlyUnderTheAllowedFolder) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.file("media"));
  testing::write_file(dir.file("media/a.png"), read_file(image_fixture("shapes_70x50.png")));
  testing::write_file(dir.file("secret.png"), read_file(image_fixture("shapes_70x50.png")));
  server::ServerOptions options;
  options.allowed_media_dir = dir.file("media");
  ServerHarness server(options);
  auto by_path = server.chat(greedy(json::array({user_message("Describe", {dir.file("media/a.png")})}), 1));
  ASSERT_EQ(by_path->status, 200) << by_path->body;
  EXPECT_EQ(json::parse(by_path->body)["images"][0]["width"], 70);
  auto by_url = server.chat(greedy(json::array({user_message("Describe", {"file://" + dir.file("media/a.png")})}), 1));
  EXPECT_EQ(by_url->status, 200) << by_url->body;
  for (const std::string& outside : {dir.file("secret.png"), dir.file("media/../secret.png"), dir.file("media/no.png"),
                                     std::string("/etc/passwd")}) {
    auto refused = server.chat(greedy(json::array({user_message("Describe", {outside})}), 1));
    EXPECT_EQ(refused->status, 400) << outside;
    EXPECT_EQ(testing::error_of(refused)["code"], "media_not_found") << refused->body;
  }
  // A server without --allowed-media-dir refuses every local file.
  ServerHarness closed;
  auto refused = closed.chat(greedy(json::array({user_message("Describe", {dir.file("media/a.png")})}), 1));
  EXPECT_EQ(refused->status, 400);
  EXPECT_EQ(testing::error_of(refused)["code"], "local_media_disabled");
}

TEST(ServerApi, ThinkingCheckpointReturnsReasoningApart) {
  // tiny-realtok-bf16 with the released Thinking template; its random weights never close </think>, so the whole
  // reply is reasoning and the answer is empty (the engine's unit tests cover the split itself).
  testing::TempDir dir;
  const std::string copy = testing::checkpoint_with_chat_template(
      dir, "thinking", testing::reference_template("qwen3vl_thinking.jinja"));
  const auto model = load_model(copy);
  ASSERT_EQ(model->chat_template.kind(), ChatTemplateKind::Thinking);
  server::ServerOptions options;
  options.model_dir = copy;
  ServerHarness server(options, model.get());
  json request = {{"messages", json::array({user_message("Why is the sky blue?")})}, {"max_tokens", 10},
                  {"temperature", 0}};
  auto result = server.chat(request);
  ASSERT_EQ(result->status, 200) << result->body;
  const json message = json::parse(result->body)["choices"][0]["message"];
  ASSERT_TRUE(message.contains("reasoning_content"));
  EXPECT_FALSE(message["reasoning_content"].get<std::string>().empty());
  EXPECT_EQ(message["content"], "");
  // Streamed: the deltas carry reasoning_content, and add up to the same reasoning.
  request["stream"] = true;
  const auto stream = testing::parse_sse(server.chat(request)->body);
  std::string reasoning, content;
  for (const json& event : stream.events)
    for (const json& choice : event["choices"]) {
      if (choice["delta"].contains("reasoning_content")) reasoning += choice["delta"]["reasoning_content"];
      if (choice["delta"].contains("content")) content += choice["delta"]["content"];
    }
  EXPECT_EQ(reasoning, message["reasoning_content"]);
  EXPECT_EQ(content, "");
}

TEST(ServerApi, GroundingIsMappedToEachImagesPixels) {
  // Random weights never write boxes, so the mapping the responses carry is checked on a reply text directly.
  std::vector<server::PreparedChat::ImageInfo> images(2);
  images[0].width = 640;
  images[0].height = 480;
  images[1].width = 100;
  images[1].height = 50;
  const json grounding = server::grounding_json(
      "```json\n[{\"bbox_2d\": [100, 200, 500, 1000], \"label\": \"cat\"}, {\"point_2d\": [500, 500]}]\n```", images);
  ASSERT_EQ(grounding.size(), 2u);
  EXPECT_EQ(grounding[0]["width"], 640);
  EXPECT_EQ(grounding[0]["items"][0]["label"], "cat");
  EXPECT_EQ(grounding[0]["items"][0]["bbox_pixels"], json::array({64, 96, 320, 480}));
  EXPECT_EQ(grounding[0]["items"][1]["point_pixels"], json::array({320, 240}));
  EXPECT_EQ(grounding[1]["image_index"], 1);
  EXPECT_EQ(grounding[1]["items"][0]["bbox_pixels"], json::array({10, 10, 50, 50}));
  EXPECT_TRUE(server::grounding_json("no boxes here", images).is_null());
}

}  // namespace
}  // namespace qwen3vl
