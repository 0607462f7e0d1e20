// `qwen3vl serve`: POST /tokenize and POST /detokenize in llama-server's shapes on the tiny real-tokenizer
// checkpoint: every HF tokenizer golden string round-trips with the golden ids, the same ids as `qwen3vl tokenize`,
// pieces and parse_special, the chat form against the chat endpoint's own prompt, and the refusals (field named,
// same guards as the other routes).
#include <gtest/gtest.h>

#include <map>

#include "e2e/server_harness.h"
#include "test_util.h"
#include "tokenizer/unicode_text.h"
#include "tokenizer_goldens.h"

namespace qwen3vl {
namespace {

using nlohmann::json;
using testing::ServerHarness;

const std::string kJson = "application/json";

json post_json(httplib::Client& client, const std::string& path, const json& body, int status = 200) {
  auto result = client.Post(path.c_str(), body.dump(), kJson.c_str());
  EXPECT_TRUE(result);
  if (!result) return nullptr;
  EXPECT_EQ(result->status, status) << body.dump().substr(0, 300) << "\n-> " << result->body;
  return json::parse(result->body, nullptr, false);
}

// What HF tokenized for a golden: its bytes decoded with errors="replace" (JSON carries no invalid UTF-8).
std::string golden_text(const testing::TokenizerGolden& golden) { return unicode::replace_invalid_utf8(golden.input); }

TEST(ServerTokenize, EveryGoldenStringRoundTripsWithTheGoldenIds) {
  ServerHarness server;
  httplib::Client client = server.client();
  const auto& goldens = testing::tokenizer_goldens();
  ASSERT_GE(goldens.size(), 2000u);
  int failures = 0;
  for (size_t i = 0; i < goldens.size() && failures < 10; ++i) {
    const json tokens = post_json(client, "/tokenize", {{"content", golden_text(goldens[i])}});
    const json text = post_json(client, "/detokenize", {{"tokens", tokens["tokens"]}});
    const bool ok = tokens["tokens"] == json(goldens[i].ids) && text["content"] == goldens[i].decoded;
    if (!ok && ++failures)
      ADD_FAILURE() << "golden " << i << " (" << goldens[i].cat << "): " << tokens << " -> " << text;
  }
  EXPECT_EQ(failures, 0);
  // parse_special false: the special tokens' text as plain text, as HF's split_special_tokens. That text is then
  // NFC-normalized with its neighbours (">" + U+0338 becomes U+226F), so the text coming back is the normalized one,
  // which tokenizes to the same ids.
  for (const auto& [index, ids] : testing::split_special_goldens()) {
    const json split =
        post_json(client, "/tokenize", {{"content", golden_text(goldens[index])}, {"parse_special", false}});
    ASSERT_EQ(split["tokens"], json(ids)) << "golden " << index;
    const json text = post_json(client, "/detokenize", split);
    EXPECT_EQ(post_json(client, "/tokenize", {{"content", text["content"]}, {"parse_special", false}}), split)
        << "golden " << index;
  }
}

TEST(ServerTokenize, IdsAreThoseOfTheCli) {
  ServerHarness server;
  httplib::Client client = server.client();
  testing::TempDir dir;
  std::map<std::string, size_t> first_of;
  const auto& goldens = testing::tokenizer_goldens();
  for (size_t i = 0; i < goldens.size(); ++i) first_of.emplace(goldens[i].cat, i);
  for (const char* cat : {"invalid_utf8", "special_mixed", "cjk", "emoji", "whitespace", "nfc_unicode9", "code",
                          "random_mix"}) {
    const testing::TokenizerGolden& golden = goldens.at(first_of.at(cat));
    testing::write_file(dir.file("text"), golden.input);  // the raw bytes: the CLI replaces invalid UTF-8 itself
    const auto cli = testing::run_cli("tokenize -m " + testing::tiny_model_dir() + " --ids-only -f " + dir.file("text"),
                                      /*with_stderr=*/false);
    ASSERT_EQ(cli.exit_code, 0) << cat;
    const json served = post_json(client, "/tokenize", {{"content", golden_text(golden)}});
    EXPECT_EQ(served["tokens"], json::parse(cli.output)) << cat;
    EXPECT_EQ(served["tokens"], json(golden.ids)) << cat;
  }
}

TEST(ServerTokenize, PiecesAreTextOrTheirBytes) {
  ServerHarness server;
  httplib::Client client = server.client();
  // U+1F99C: three of its bytes in one token, the fourth in the next; neither piece is UTF-8 alone.
  const json pieces = post_json(
      client, "/tokenize",
      {{"content", "Hi <|im_start|>\xF0\x9F\xA6\x9C"}, {"with_pieces", true}, {"add_special", true}});
  EXPECT_EQ(pieces, json::parse(R"({"tokens": [{"id": 13048, "piece": "Hi"}, {"id": 220, "piece": " "},
                                               {"id": 151644, "piece": "<|im_start|>"},
                                               {"id": 123918, "piece": [240, 159, 166]},
                                               {"id": 250, "piece": [156]}]})"));
  // "Hi", " <|", "im", "_start", "|", ">" (HF's ids with split_special_tokens=True).
  EXPECT_EQ(post_json(client, "/tokenize", {{"content", "Hi <|im_start|>"}, {"parse_special", false}})["tokens"],
            json::array({13048, 82639, 318, 4906, 91, 29}));
  EXPECT_EQ(post_json(client, "/tokenize", {{"content", ""}}), json::parse(R"({"tokens": []})"));
  EXPECT_EQ(post_json(client, "/detokenize", {{"tokens", json::array()}}), json::parse(R"({"content": ""})"));
}

TEST(ServerTokenize, MessagesGiveTheChatEndpointsPrompt) {
  ServerHarness server;
  httplib::Client client = server.client();
  const std::string image_path = testing::image_fixture("shapes_150x97.png");
  const json messages =
      json::array({{{"role", "system"}, {"content", "Be brief."}},
                   testing::user_message("What is this?", {testing::data_url(testing::read_file(image_path))})});
  const json tokens = post_json(client, "/tokenize", {{"messages", messages}});
  ASSERT_TRUE(tokens["tokens"].is_array());
  EXPECT_GT(tokens["image_tokens"].get<int64_t>(), 0);
  EXPECT_EQ(tokens["visual_tokens"], tokens["image_tokens"]);
  EXPECT_EQ(tokens["video_tokens"], 0);
  EXPECT_EQ(std::count(tokens["tokens"].begin(), tokens["tokens"].end(), json(151655)),
            tokens["image_tokens"].get<int64_t>());
  // Tokenizing looks at the image cache without counting; the completion then misses it once.
  EXPECT_EQ(server.metric("qwen3vl_image_cache_misses_total"), 0);
  const json completion = post_json(client, "/v1/chat/completions",
                                    {{"messages", messages}, {"max_tokens", 1}, {"temperature", 0}});
  EXPECT_EQ(completion["usage"]["prompt_tokens"], tokens["tokens"].size());
  EXPECT_EQ(completion["usage"]["prompt_tokens_details"]["image_tokens"], tokens["image_tokens"]);
  EXPECT_EQ(server.metric("qwen3vl_image_cache_misses_total"), 1);
  // Cached now: the same prompt from the cache's grid.
  EXPECT_EQ(post_json(client, "/tokenize", {{"messages", messages}})["tokens"], tokens["tokens"]);
  const std::string text = post_json(client, "/detokenize", {{"tokens", tokens["tokens"]}})["content"];
  EXPECT_NE(text.find("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|>"),
            std::string::npos);
  EXPECT_EQ(text.substr(text.size() - 22), "<|im_start|>assistant\n");
  // with_pieces applies to a chat prompt too; the CLI builds the same prompt from the same file.
  const json pieces = post_json(client, "/tokenize", {{"messages", messages}, {"with_pieces", true}});
  EXPECT_EQ(pieces["tokens"][0], json::parse(R"({"id": 151644, "piece": "<|im_start|>"})"));
  testing::TempDir dir;
  testing::write_file(dir.file("chat.json"), messages.dump());
  const auto cli = testing::run_cli("tokenize -m " + testing::tiny_model_dir() + " --ids-only --messages " +
                                    dir.file("chat.json"), /*with_stderr=*/false);
  ASSERT_EQ(cli.exit_code, 0);
  EXPECT_EQ(json::parse(cli.output), tokens["tokens"]);
}

TEST(ServerTokenize, VideosAreExpandedWithTheirTimestamps) {
  ServerHarness server;
  httplib::Client client = server.client();
  const std::string videos = testing::fixtures_dir() + "/videos/";
  const std::string mp4 = testing::data_url(testing::read_file(videos + "cfr24_3s.mp4"), "video/mp4");
  const json part = {{"type", "video_url"}, {"video_url", {{"url", mp4}}}};
  const json text_part = {{"type", "text"}, {"text", "What happens?"}};
  const json messages = json::array({{{"role", "user"}, {"content", json::array({part, text_part})}}});
  const json tokens = post_json(client, "/tokenize", {{"messages", messages}});
  EXPECT_GT(tokens["video_tokens"].get<int64_t>(), 0);
  EXPECT_EQ(tokens["image_tokens"], 0);
  EXPECT_EQ(tokens["visual_tokens"], tokens["video_tokens"]);
  const json completion = post_json(client, "/v1/chat/completions",
                                    {{"messages", messages}, {"max_tokens", 1}, {"temperature", 0}});
  EXPECT_EQ(completion["usage"]["prompt_tokens"], tokens["tokens"].size());
  EXPECT_EQ(completion["usage"]["prompt_tokens_details"]["video_tokens"], tokens["video_tokens"]);
  const std::string text = post_json(client, "/detokenize", {{"tokens", tokens["tokens"]}})["content"];
  // transformers 5's expansion: each frame pair "<t.t seconds><|vision_start|>pads<|vision_end|>" inside the
  // template's own <|vision_start|> ... <|vision_end|>.
  EXPECT_EQ(text.rfind("<|im_start|>user\n<|vision_start|><", 0), 0u) << text.substr(0, 200);
  EXPECT_NE(text.find(" seconds><|vision_start|><|video_pad|>"), std::string::npos) << text.substr(0, 200);
}

json expect_refused(httplib::Client& client, const std::string& path, const std::string& body, int status,
                    const std::string& param, const std::string& words = "") {
  auto result = client.Post(path.c_str(), body, kJson.c_str());
  EXPECT_TRUE(result);
  if (!result) return nullptr;
  EXPECT_EQ(result->status, status) << path << " " << body.substr(0, 200) << "\n-> " << result->body;
  const json error = testing::error_of(result);
  if (error.is_null()) return error;
  EXPECT_EQ(error["param"], param.empty() ? json() : json(param)) << result->body;
  if (!param.empty()) {
    EXPECT_NE(error["message"].get<std::string>().find(param), std::string::npos) << result->body;
  }
  EXPECT_NE(error["message"].get<std::string>().find(words), std::string::npos) << result->body;
  return error;
}

TEST(ServerTokenize, InvalidRequestsNameTheField) {
  ServerHarness server;
  httplib::Client client = server.client();
  expect_refused(client, "/tokenize", R"({})", 400, "content", "missing");
  expect_refused(client, "/tokenize", R"({"content": null})", 400, "content", "missing");
  expect_refused(client, "/tokenize", R"({"content": 5})", 400, "content", "expected a string, got an integer");
  expect_refused(client, "/tokenize", R"({"content": ["a", 1]})", 400, "content", "got an array");
  expect_refused(client, "/tokenize", R"({"content": "a", "with_pieces": "yes"})", 400, "with_pieces", "boolean");
  expect_refused(client, "/tokenize", R"({"content": "a", "add_special": 1})", 400, "add_special", "boolean");
  expect_refused(client, "/tokenize", R"({"content": "a", "parse_special": "no"})", 400, "parse_special", "boolean");
  expect_refused(client, "/tokenize", R"({"content": "a", "messages": [{"role": "user", "content": "b"}]})", 400,
                 "content", "not both");
  expect_refused(client, "/tokenize", R"({"messages": [{"role": "user", "content": "b"}], "parse_special": false})",
                 400, "parse_special", "always parsed");
  expect_refused(client, "/tokenize", R"({"messages": [{"role": "user", "content": 5}]})", 400,
                 "messages[0].content");
  expect_refused(client, "/tokenize", R"({"messages": [{"role": "user", "content": "b"}], "model": "other"})", 404,
                 "model");
  expect_refused(client, "/tokenize", R"(["content"])", 400, "", "JSON object");
  const json malformed = expect_refused(client, "/tokenize", R"({"content": )", 400, "");
  EXPECT_EQ(malformed["code"], "invalid_json");

  expect_refused(client, "/detokenize", R"({})", 400, "tokens", "missing");
  expect_refused(client, "/detokenize", R"({"tokens": "abc"})", 400, "tokens", "expected an array");
  expect_refused(client, "/detokenize", R"({"tokens": [1, "x"]})", 400, "tokens[1]", "expected an integer");
  expect_refused(client, "/detokenize", R"({"tokens": [1, 2.5]})", 400, "tokens[1]", "expected an integer");
  expect_refused(client, "/detokenize", R"({"tokens": [18446744073709551615]})", 400, "tokens[0]", "not a token id");
  const json unknown = expect_refused(client, "/detokenize", R"({"tokens": [9707, 151669]})", 400, "tokens",
                                      "tokens[1]: 151669 is not a token id");
  EXPECT_EQ(unknown["code"], "invalid_token");
  expect_refused(client, "/detokenize", R"({"tokens": [-1]})", 400, "tokens", "tokens[0]: -1 is not a token id");
  EXPECT_EQ(server.get_json("/health")["status"], "ok");
}

TEST(ServerTokenize, SameGuardsAsTheOtherRoutes) {
  server::ServerOptions options;
  options.api_key = "sekrit";
  options.ctx_size = 256;           // text beyond 256 * 16 bytes cannot fit: refused before tokenizing
  options.max_body_bytes = 16384;
  ServerHarness server(options);
  httplib::Client client = server.client();
  const std::string body = json{{"content", "hi"}}.dump();
  for (const char* path : {"/tokenize", "/detokenize"}) {
    auto no_key = client.Post(path, body, kJson.c_str());
    ASSERT_TRUE(no_key);
    EXPECT_EQ(no_key->status, 401) << path;
    EXPECT_EQ(testing::error_of(no_key)["type"], "authentication_error");
  }
  client.set_bearer_token_auth("sekrit");
  EXPECT_EQ(post_json(client, "/tokenize", {{"content", "hi"}})["tokens"], json::array({6023}));
  auto plain_text = client.Post("/tokenize", body, "text/plain");
  ASSERT_TRUE(plain_text);
  EXPECT_EQ(plain_text->status, 415);
  auto foreign = client.Post("/detokenize", {{"Host", "evil.example"}}, R"({"tokens": [1]})", kJson.c_str());
  ASSERT_TRUE(foreign);
  EXPECT_EQ(foreign->status, 403);
  const json long_text = expect_refused(client, "/tokenize", json{{"content", std::string(5000, 'a')}}.dump(), 400,
                                        "content", "more than can fit");
  EXPECT_EQ(long_text["code"], "context_length_exceeded");
  auto too_big = client.Post("/tokenize", json{{"content", std::string(20000, 'a')}}.dump(), kJson.c_str());
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->status, 413);
  EXPECT_EQ(testing::error_of(too_big)["code"], "request_too_large");
  // Counted in /metrics with the other responses.
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("qwen3vl_http_responses_total{code=\"415\"} 1"), std::string::npos) << metrics->body;
  EXPECT_NE(metrics->body.find("qwen3vl_http_responses_total{code=\"413\"} 1"), std::string::npos);
}

}  // namespace
}  // namespace qwen3vl
