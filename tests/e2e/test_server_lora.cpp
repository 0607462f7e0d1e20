// `qwen3vl serve` with PEFT LoRA adapters (written here) on the tiny real-tokenizer checkpoint: a request picks
// adapters by its "model" name (vLLM) or by "lora": [{"id", "scale"}] (llama-server) and gets what `qwen3vl run
// --lora` prints for them alone, also while other adapter sets run beside it; scale 0 is the base; GET and POST
// /lora-adapters list, rescale, load and unload adapters; a request keeps its adapters when they are unloaded
// mid-reply; a vision-tower adapter's image features are not the base's cached ones; bad adapters and bad "lora"
// values get 4xx answers and the server keeps serving.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <functional>
#include <random>
#include <thread>

#include "e2e/server_harness.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

using nlohmann::json;
using testing::run_cli;
using testing::ServerHarness;
using testing::TempDir;
using testing::user_message;

const char kBase[] = "tiny-realtok-bf16";
const char kPrompt[] = "Describe a bicycle.";
constexpr int kTokens = 12;
constexpr int kLongTokens = 200;  // long enough to still be generating when the test changes the adapters

// A linear the test adapters target: its HF module path and shape (tiny-realtok-bf16: text hidden 32, q width 64,
// kv width 32, intermediate 64; vision hidden 32, qkv 96).
struct Target {
  std::string module;
  int64_t in, out;
};

std::vector<Target> every_layer(const std::vector<Target>& layer_targets) {
  std::vector<Target> targets;
  for (int layer = 0; layer < 3; ++layer)
    for (const Target& t : layer_targets)
      targets.push_back({"model.language_model.layers." + std::to_string(layer) + "." + t.module, t.in, t.out});
  return targets;
}

const std::vector<Target> kAlphaTargets = every_layer({{"self_attn.q_proj", 32, 64}, {"mlp.down_proj", 64, 32}});
const std::vector<Target> kBetaTargets = every_layer({{"self_attn.v_proj", 32, 32}, {"mlp.gate_proj", 32, 64}});
const std::vector<Target> kTowerTargets = {{"model.visual.blocks.0.attn.qkv", 32, 96}};

struct AdapterSpec {
  std::vector<Target> targets;
  uint32_t seed = 1;
  float b_std = 0.5f;   // PEFT initialises B to 0; trained adapters have moved it
  int64_t rank_b = 4;   // lora_B's rank (lora_A's and the config's are 4)
};

// A PEFT adapter folder, F32 tensors as PEFT saves them, r = 4, lora_alpha = 8.
std::string write_adapter(const std::string& folder, const AdapterSpec& spec) {
  std::filesystem::create_directories(folder);
  testing::write_file(folder + "/adapter_config.json",
                      json{{"peft_type", "LORA"}, {"r", 4}, {"lora_alpha", 8}}.dump());
  std::mt19937 rng(spec.seed);
  std::deque<std::vector<float>> values;
  std::vector<TensorToWrite> tensors;
  auto add = [&](const std::string& name, int64_t rows, int64_t cols, float std_dev) {
    std::normal_distribution<float> normal(0.f, std_dev);
    values.emplace_back(static_cast<size_t>(rows * cols));
    for (float& v : values.back()) v = normal(rng);
    tensors.push_back({name, "F32", {rows, cols}, values.back().data(), values.back().size() * sizeof(float)});
  };
  for (const Target& t : spec.targets) {
    add("base_model.model." + t.module + ".lora_A.weight", 4, t.in, 0.5f);
    add("base_model.model." + t.module + ".lora_B.weight", t.out, spec.rank_b, spec.b_std);
  }
  write_safetensors(folder + "/adapter_model.safetensors", tensors, {{"format", "pt"}});
  return folder;
}

json chat_body(const json& extra, int max_tokens = kTokens, const std::vector<std::string>& images = {}) {
  json body = {{"messages", json::array({user_message(kPrompt, images)})},
               {"max_tokens", max_tokens},
               {"temperature", 0}};
  body.update(extra);
  return body;
}

std::string content_of(const httplib::Result& result) {
  if (!result) return "<no response>";
  EXPECT_EQ(result->status, 200) << result->body;
  const json body = json::parse(result->body, nullptr, false);
  if (result->status != 200 || body.is_discarded()) return "<error>";
  return body["choices"][0]["message"]["content"].get<std::string>();
}

std::string reply(const ServerHarness& server, const json& extra, int max_tokens = kTokens,
                  const std::vector<std::string>& images = {}) {
  return content_of(server.chat(chat_body(extra, max_tokens, images)));
}

// What `qwen3vl run` prints for the same prompt alone (the reply and a newline).
std::string run_reply(const std::string& extra) {
  const auto result = run_cli("run -m " + testing::tiny_model_dir() + " -p '" + kPrompt + "' --temp 0 -n " +
                                  std::to_string(kTokens) + " " + extra,
                              /*with_stderr=*/false);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return result.output;
}

httplib::Result post_adapters(const ServerHarness& server, const json& body, const httplib::Headers& headers = {}) {
  return server.client().Post("/lora-adapters", headers, body.dump(), "application/json");
}

// The error of a 4xx answer, with its status checked.
json expect_error(const httplib::Result& result, int status) {
  EXPECT_TRUE(result);
  if (!result) return json::object();
  EXPECT_EQ(result->status, status) << result->body;
  const json error = testing::error_of(result);
  return error.is_object() ? error : json::object();
}

// Streams a long reply of `extra` and calls `midway` once its first bytes have arrived; returns the text.
std::string stream_with(const ServerHarness& server, const json& extra, int max_tokens,
                        const std::function<void()>& midway) {
  json body = chat_body(extra, max_tokens);
  body["stream"] = true;
  std::string raw;
  bool called = false;
  httplib::Request request;
  request.method = "POST";
  request.path = "/v1/chat/completions";
  request.body = body.dump();
  request.set_header("Content-Type", "application/json");
  request.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
    raw.append(data, size);
    if (!called) {  // the stream has begun: the request's adapters were chosen before its first byte
      called = true;
      midway();
    }
    return true;
  };
  httplib::Client client = server.client();
  EXPECT_TRUE(client.send(request));
  EXPECT_TRUE(called) << raw;
  const testing::SseStream stream = testing::parse_sse(raw);
  EXPECT_TRUE(stream.done) << raw;
  std::string text;
  for (const json& event : stream.events)
    if (event.contains("choices") && !event["choices"].empty() && event["choices"][0]["delta"].contains("content"))
      text += event["choices"][0]["delta"]["content"].get<std::string>();
  return text;
}

TEST(ServerLora, ConcurrentAdapterSetsMatchLoneRuns) {
  TempDir dir;
  const std::string alpha = write_adapter(dir.file("alpha"), {kAlphaTargets, 1});
  const std::string beta = write_adapter(dir.file("beta"), {kBetaTargets, 100});
  server::ServerOptions options;
  options.parallel = 4;
  options.lora_adapters = {"alpha=" + alpha, beta};  // the second is named after its folder
  ServerHarness server(options);

  const std::vector<json> requests = {
      {{"model", kBase}},
      {{"model", "alpha"}},
      {{"model", "beta"}},
      {{"lora", json::array({{{"id", 0}, {"scale", 0.5}}, {{"id", 1}, {"scale", 0.5}}})}}};
  std::vector<std::string> lone;
  for (const json& r : requests) lone.push_back(reply(server, r));
  EXPECT_EQ(lone[0] + "\n", run_reply(""));
  EXPECT_EQ(lone[1] + "\n", run_reply("--lora " + alpha));
  EXPECT_EQ(lone[2] + "\n", run_reply("--lora " + beta));
  EXPECT_EQ(lone[3] + "\n", run_reply("--lora " + alpha + ":0.5 --lora " + beta + ":0.5"));
  EXPECT_NE(lone[1], lone[0]);
  EXPECT_NE(lone[2], lone[0]);
  EXPECT_NE(lone[2], lone[1]);
  EXPECT_EQ(reply(server, {{"lora", json::array({{{"id", 1}, {"scale", 1}}})}}), lone[2]);

  // Two of each at once, on four slots.
  std::vector<std::string> together(2 * requests.size());
  std::vector<std::thread> clients;
  for (size_t k = 0; k < together.size(); ++k)
    clients.emplace_back([&, k] { together[k] = reply(server, requests[k % requests.size()]); });
  for (std::thread& t : clients) t.join();
  for (size_t k = 0; k < together.size(); ++k) EXPECT_EQ(together[k], lone[k % requests.size()]) << "request " << k;

  // The reply names the adapter the request chose; /v1/models lists the base and each adapter.
  auto named = server.chat(chat_body({{"model", "beta"}}));
  ASSERT_TRUE(named);
  EXPECT_EQ(json::parse(named->body)["model"], "beta");
  const json models = server.get_json("/v1/models")["data"];
  ASSERT_EQ(models.size(), 3u);
  EXPECT_EQ(models[0]["id"], kBase);
  EXPECT_EQ(models[1]["id"], "alpha");
  EXPECT_EQ(models[1]["parent"], kBase);
  EXPECT_EQ(models[1]["root"], alpha);
  EXPECT_EQ(models[2]["id"], "beta");
  EXPECT_EQ(models[2]["parent"], kBase);
}

TEST(ServerLora, ScaleZeroIsTheBaseAndDefaultScalesApplyToRequestsThatPickNone) {
  TempDir dir;
  const std::string alpha = write_adapter(dir.file("alpha"), {kAlphaTargets, 1});
  server::ServerOptions options;
  options.lora_adapters = {"alpha=" + alpha};
  ServerHarness server(options);
  const std::string base = reply(server, json::object());
  const std::string adapted = reply(server, {{"model", "alpha"}});
  ASSERT_NE(adapted, base);
  EXPECT_EQ(reply(server, {{"lora", json::array({{{"id", 0}, {"scale", 0}}})}}), base);
  EXPECT_EQ(reply(server, {{"lora", json::array()}}), base);

  EXPECT_EQ(server.get_json("/lora-adapters"),
            json::parse(R"([{"id": 0, "name": "alpha", "path": ")" + alpha + R"(", "scale": 0.0}])"));
  auto set = post_adapters(server, json::array({{{"id", 0}, {"scale", 1.0}}}));
  ASSERT_TRUE(set);
  ASSERT_EQ(set->status, 200) << set->body;
  EXPECT_EQ(json::parse(set->body)["success"], true);
  EXPECT_EQ(json::parse(set->body)["adapters"][0]["scale"], 1.0);
  EXPECT_EQ(server.get_json("/lora-adapters")[0]["scale"], 1.0);
  // No "lora" and no adapter name: the default scales. A "lora" field, even an empty one, replaces them.
  EXPECT_EQ(reply(server, json::object()), adapted);
  EXPECT_EQ(reply(server, {{"model", kBase}}), adapted);
  EXPECT_EQ(reply(server, {{"lora", json::array()}}), base);
  EXPECT_EQ(reply(server, {{"model", "alpha"}, {"lora", json::array()}}), base);

  // Unlisted adapters go back to 0, as in llama-server.
  ASSERT_EQ(post_adapters(server, json::array())->status, 200);
  EXPECT_EQ(server.get_json("/lora-adapters")[0]["scale"], 0.0);
  EXPECT_EQ(reply(server, json::object()), base);
  ASSERT_EQ(post_adapters(server, json::array({{{"id", 0}, {"scale", 0.5}}}))->status, 200);
  const std::string half = reply(server, json::object());
  EXPECT_EQ(half, reply(server, {{"lora", json::array({{{"id", 0}, {"scale", 0.5}}})}}));
  EXPECT_NE(half, base);
  EXPECT_NE(half, adapted);

  // A request that started under one default keeps it when the default changes mid-reply.
  ASSERT_EQ(post_adapters(server, json::array({{{"id", 0}, {"scale", 1.0}}}))->status, 200);
  const std::string long_adapted = reply(server, json::object(), kLongTokens);
  const std::string streamed = stream_with(server, json::object(), kLongTokens, [&] {
    EXPECT_EQ(post_adapters(server, json::array())->status, 200);
  });
  EXPECT_EQ(streamed, long_adapted);
  EXPECT_EQ(reply(server, json::object()), base);
}

TEST(ServerLora, AdapterLoadedAtRunTimeServesTheNextRequest) {
  TempDir dir;
  const std::string alpha = write_adapter(dir.file("adapters/alpha"), {kAlphaTargets, 1});
  const std::string beta = write_adapter(dir.file("adapters/beta"), {kBetaTargets, 100});
  server::ServerOptions options;
  options.allowed_lora_dir = dir.file("adapters");
  ServerHarness server(options);
  EXPECT_EQ(server.get_json("/v1/models")["data"].size(), 1u);
  EXPECT_EQ(expect_error(server.chat(chat_body({{"model", "alpha"}})), 404)["code"], "model_not_found");

  auto loaded = post_adapters(server, {{"path", "alpha"}});  // relative to --allowed-lora-dir, named after it
  ASSERT_TRUE(loaded);
  ASSERT_EQ(loaded->status, 200) << loaded->body;
  const json listed = json::parse(loaded->body)["adapters"];
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["id"], 0);
  EXPECT_EQ(listed[0]["name"], "alpha");
  EXPECT_EQ(listed[0]["scale"], 0.0);
  const std::string adapted = reply(server, {{"model", "alpha"}});
  EXPECT_EQ(adapted + "\n", run_reply("--lora " + alpha));
  EXPECT_EQ(reply(server, {{"lora", json::array({{{"id", 0}, {"scale", 1}}})}}), adapted);
  const json models = server.get_json("/v1/models")["data"];
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[1]["id"], "alpha");
  EXPECT_EQ(models[1]["parent"], kBase);

  ASSERT_EQ(post_adapters(server, {{"path", beta}, {"name", "b2"}})->status, 200);
  EXPECT_EQ(server.get_json("/lora-adapters")[1]["name"], "b2");
  EXPECT_EQ(expect_error(post_adapters(server, {{"path", beta}, {"name", "alpha"}}), 400)["param"], "name");
  EXPECT_EQ(expect_error(post_adapters(server, {{"path", beta}, {"name", kBase}}), 400)["param"], "name");

  // Unloaded while a request runs with it: that request finishes with it; later ones cannot pick it.
  const std::string long_adapted = reply(server, {{"model", "alpha"}}, kLongTokens);
  const std::string streamed = stream_with(server, {{"model", "alpha"}}, kLongTokens, [&] {
    EXPECT_EQ(post_adapters(server, {{"id", 0}, {"unload", true}})->status, 200);
  });
  EXPECT_EQ(streamed, long_adapted);
  EXPECT_EQ(expect_error(server.chat(chat_body({{"model", "alpha"}})), 404)["param"], "model");
  EXPECT_EQ(expect_error(server.chat(chat_body({{"lora", json::array({{{"id", 0}, {"scale", 1}}})}})), 400)["param"],
            "lora[0].id");
  EXPECT_EQ(expect_error(post_adapters(server, {{"id", 0}, {"unload", true}}), 400)["param"], "id");
  // Ids are not reused: loaded again, alpha is adapter 2.
  auto again = post_adapters(server, {{"path", "alpha"}});
  ASSERT_EQ(again->status, 200) << again->body;
  const json now = server.get_json("/lora-adapters");
  ASSERT_EQ(now.size(), 2u);
  EXPECT_EQ(now[0]["id"], 1);
  EXPECT_EQ(now[1]["id"], 2);
  EXPECT_EQ(reply(server, {{"lora", json::array({{{"id", 2}, {"scale", 1}}})}}), adapted);
}

TEST(ServerLora, RunTimeLoadingIsOptInConfinedAndKeyed) {
  TempDir dir;
  const std::string inside = write_adapter(dir.file("adapters/inside"), {kAlphaTargets, 1});
  const std::string outside = write_adapter(dir.file("outside"), {kAlphaTargets, 1});
  testing::write_file(dir.file("adapters/file"), "not a folder");
  std::filesystem::create_directory_symlink(outside, dir.file("adapters/link"));
  {
    ServerHarness closed;
    EXPECT_EQ(expect_error(post_adapters(closed, {{"path", inside}}), 403)["code"], "adapter_loading_disabled");
    // Scales may still be set (there are none to set here).
    EXPECT_EQ(post_adapters(closed, json::array())->status, 200);
  }
  server::ServerOptions options;
  options.allowed_lora_dir = dir.file("adapters");
  options.api_key = "sesame";
  ServerHarness server(options);
  const httplib::Headers key = {{"Authorization", "Bearer sesame"}};
  EXPECT_EQ(expect_error(post_adapters(server, {{"path", "inside"}}), 401)["code"], "invalid_api_key");
  EXPECT_EQ(expect_error(server.client().Get("/lora-adapters"), 401)["code"], "invalid_api_key");
  // Outside the folder (also through "..", a link), missing or not a folder: one answer, so that nothing is learnt
  // about paths outside it.
  for (const std::string& path : {outside, std::string("../outside"), std::string("link"),
                                  dir.file("outside/nope"), std::string("nope"), std::string("file")}) {
    const json error = expect_error(post_adapters(server, {{"path", path}}, key), 400);
    EXPECT_EQ(error["param"], "path");
    EXPECT_EQ(error["message"], "path: " + path + ": no such folder inside the folder adapters are loaded from "
                                "(--allowed-lora-dir)");
  }
  // JSON only (a cross-site form cannot send it), and well-formed.
  auto form = server.client().Post("/lora-adapters", key, "path=inside", "application/x-www-form-urlencoded");
  ASSERT_TRUE(form);
  EXPECT_EQ(form->status, 415);
  auto broken = server.client().Post("/lora-adapters", key, "{\"path\":", "application/json");
  EXPECT_EQ(expect_error(broken, 400)["code"], "invalid_json");
  EXPECT_EQ(expect_error(post_adapters(server, {{"what", 1}}, key), 400)["message"].get<std::string>().find("expected"),
            0u);
  EXPECT_EQ(expect_error(post_adapters(server, {{"id", 0}, {"unload", "yes"}}, key), 400)["param"], "unload");

  auto loaded = post_adapters(server, {{"path", "inside"}}, key);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->status, 200) << loaded->body;
}

TEST(ServerLora, BadAdaptersAreRefusedAndTheServerKeepsServing) {
  TempDir dir;
  const std::string root = dir.file("adapters");
  const std::string no_tensors = write_adapter(root + "/no_tensors", {kAlphaTargets, 1});
  std::filesystem::remove(no_tensors + "/adapter_model.safetensors");
  write_adapter(root + "/rank", {kAlphaTargets, 1, 0.5f, /*rank_b=*/2});
  const std::string corrupt = write_adapter(root + "/corrupt", {kAlphaTargets, 1});
  testing::write_file(corrupt + "/adapter_model.safetensors", std::string("\x40\0\0\0\0\0\0\0{\"a\":", 13));
  write_adapter(root + "/unknown", {{{"model.language_model.layers.0.self_attn.qkv_proj", 32, 96}}, 1});
  write_adapter(root + "/other_base", {{{"model.language_model.layers.0.self_attn.q_proj", 48, 64}}, 1});
  std::filesystem::create_directories(root + "/empty");
  server::ServerOptions options;
  options.allowed_lora_dir = root;
  ServerHarness server(options);
  const std::string base = reply(server, json::object());

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"no_tensors", "no_tensors/adapter_model.safetensors: missing"},
      {"rank", "rank mismatch"},
      {"corrupt", "corrupt/adapter_model.safetensors"},
      {"unknown", "which is not a linear layer of this checkpoint"},
      {"other_base", "takes 48 inputs but the checkpoint's weight takes 32"},
      {"empty", "empty/adapter_config.json"},
      {"missing", "missing: no such folder"}};
  for (const auto& [folder, expected] : cases) {
    const json error = expect_error(post_adapters(server, {{"path", folder}}), 400);
    const std::string message = error.value("message", "");
    EXPECT_NE(message.find(expected), std::string::npos) << folder << ": " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_EQ(error["param"], "path");
    EXPECT_EQ(reply(server, json::object()), base) << "after " << folder;
  }
  EXPECT_EQ(server.get_json("/lora-adapters"), json::array());
  EXPECT_EQ(server.get_json("/v1/models")["data"].size(), 1u);
}

TEST(ServerLora, BadLoraValuesAre400NamingTheField) {
  TempDir dir;
  server::ServerOptions options;
  options.lora_adapters = {write_adapter(dir.file("alpha"), {kAlphaTargets, 1})};
  ServerHarness server(options);
  const std::vector<std::pair<json, std::string>> cases = {
      {json::object(), "lora"},
      {json::array({1}), "lora[0]"},
      {json::array({{{"scale", 1}}}), "lora[0].id"},
      {json::array({{{"id", -1}, {"scale", 1}}}), "lora[0].id"},
      {json::array({{{"id", 0.5}, {"scale", 1}}}), "lora[0].id"},
      {json::array({{{"id", 0}}}), "lora[0].scale"},
      {json::array({{{"id", 0}, {"scale", "1"}}}), "lora[0].scale"},
      {json::array({{{"id", 0}, {"scale", 1}}, {{"id", 0}, {"scale", 0.5}}}), "lora[1].id"},
      {json::array({{{"id", 0}, {"scale", 1}}, {{"id", 7}, {"scale", 1}}}), "lora[1].id"}};
  for (const auto& [lora, param] : cases) {
    const json error = expect_error(server.chat(chat_body({{"lora", lora}})), 400);
    EXPECT_EQ(error["param"], param) << lora.dump() << ": " << error;
    EXPECT_EQ(error["message"].get<std::string>().rfind(param + ": ", 0), 0u) << error;
  }
  // JSON has no infinity: a scale past DBL_MAX is not valid JSON.
  const std::string overflow = chat_body(json::object()).dump();
  EXPECT_EQ(expect_error(server.post_raw(overflow.substr(0, overflow.size() - 1) +
                                         R"(,"lora":[{"id":0,"scale":1e999}]})"),
                         400)["code"],
            "invalid_json");
  EXPECT_EQ(expect_error(server.chat(chat_body({{"model", "gamma"}})), 404)["code"], "model_not_found");
  // The same checks on POST /lora-adapters' scales; a refused list changes nothing.
  EXPECT_EQ(expect_error(post_adapters(server, json::array({{{"id", 0}, {"scale", 1}}, {{"id", 3}, {"scale", 1}}})),
                         400)["param"],
            "[1].id");
  EXPECT_EQ(expect_error(post_adapters(server, json::array({{{"id", 0}, {"scale", nullptr}}})), 400)["param"],
            "[0].scale");
  EXPECT_EQ(server.get_json("/lora-adapters")[0]["scale"], 0.0);
  EXPECT_EQ(server.chat(chat_body(json::object()))->status, 200);
}

TEST(ServerLora, VisionTowerAdapterGetsItsOwnImageFeatures) {
  TempDir dir;
  const std::string eye = write_adapter(dir.file("eye"), {kTowerTargets, 7, 4.0f});
  server::ServerOptions options;
  options.lora_adapters = {"eye=" + eye};
  ServerHarness server(options);
  const std::string image_path = testing::image_fixture("shapes_70x50.png");
  const std::vector<std::string> image = {testing::data_url(testing::read_file(image_path))};
  const double hits = server.metric("qwen3vl_image_cache_hits_total");

  const std::string base = reply(server, json::object(), kTokens, image);
  const std::string adapted = reply(server, {{"model", "eye"}}, kTokens, image);
  EXPECT_NE(adapted, base) << "the adapter was given the base's cached image features";
  EXPECT_EQ(server.metric("qwen3vl_image_cache_hits_total"), hits);
  const auto lone = run_cli("run -m " + testing::tiny_model_dir() + " --image " + image_path + " -p '" + kPrompt +
                                "' --temp 0 -n " + std::to_string(kTokens) + " --lora " + eye,
                            /*with_stderr=*/false);
  EXPECT_EQ(adapted + "\n", lone.output);
  // Each set's features are cached apart: both come back from the cache unchanged.
  EXPECT_EQ(reply(server, json::object(), kTokens, image), base);
  EXPECT_EQ(reply(server, {{"lora", json::array({{{"id", 0}, {"scale", 1}}})}}, kTokens, image), adapted);
  EXPECT_EQ(server.metric("qwen3vl_image_cache_hits_total"), hits + 2);
}

TEST(ServerLora, CliLoadsAdaptersAtStartAndRefusesBadOnes) {
  TempDir dir;
  const std::string alpha = write_adapter(dir.file("alpha"), {kAlphaTargets, 1});
  const std::string rank = write_adapter(dir.file("rank"), {kAlphaTargets, 1, 0.5f, 2});
  const std::string serve = "serve -m " + testing::tiny_model_dir() + " --port 0 ";
  auto one_error_line = [](const testing::CommandResult& result, const std::string& expected) {
    EXPECT_EQ(result.exit_code, 1) << result.output;
    EXPECT_EQ(result.output.rfind("error: ", 0), 0u) << result.output;
    EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1) << result.output;
    EXPECT_NE(result.output.find(expected), std::string::npos) << result.output;
  };
  one_error_line(run_cli(serve + "--lora a=" + alpha + " --lora b=" + rank), "rank/adapter_model.safetensors");
  one_error_line(run_cli(serve + "--lora " + dir.file("none")), "none/adapter_config.json");
  one_error_line(run_cli(serve + "--lora a=" + alpha + " --lora a=" + alpha), "already loaded");
  one_error_line(run_cli(serve + "--lora =" + alpha), "the adapter name is empty");
  one_error_line(run_cli(serve + "--lora " + std::string(kBase) + "=" + alpha), "the served model's id");
  one_error_line(run_cli(serve + "--allowed-lora-dir " + dir.file("nowhere")), "--allowed-lora-dir");
  const auto help = run_cli("serve --help");
  for (const char* flag : {"--lora", "--allowed-lora-dir"}) EXPECT_NE(help.output.find(flag), std::string::npos);
}

}  // namespace
}  // namespace qwen3vl
