// The web page of `qwen3vl serve` in headless Chromium, driven over the DevTools protocol: it uploads an image
// through the page's file input, types a question, sends it, watches the answer stream into the page (several SSE
// chunks, the DOM growing step by step), checks the visual-token count it shows, draws a grounding box, and saves a
// screenshot (QWEN3VL_ARTIFACTS_DIR/serve_page.png, by default in the temp folder). Skipped when Chromium is not
// installed.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "e2e/devtools_client.h"
#include "e2e/server_harness.h"
#include "server/media_source.h"

namespace qwen3vl {
namespace {

using nlohmann::json;

// Polls a JS expression until it is true (or `timeout_s` pass).
bool wait_until(testing::HeadlessChromium& browser, const std::string& expression, int timeout_s = 30) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (browser.evaluate("Boolean(" + expression + ")") == true) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

TEST(ServerBrowser, UploadAskStreamAndScreenshot) {
  const std::string chromium = testing::find_chromium();
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (apt-get install chromium)";
  testing::ServerHarness server;
  testing::HeadlessChromium browser(chromium);
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";

  browser.call("Page.enable");
  browser.call("Page.navigate", {{"url", url}});
  ASSERT_TRUE(wait_until(browser,
                         "document.readyState === 'complete' && "
                         "document.getElementById('model').textContent.startsWith('tiny-realtok-bf16')"))
      << "the page did not load the model list";

  // Upload through the real file input.
  const json document = browser.call("DOM.getDocument", {{"depth", 0}});
  const json input = browser.call("DOM.querySelector", {{"nodeId", document["root"]["nodeId"]}, {"selector", "#file"}});
  const std::string image = std::filesystem::canonical(testing::image_fixture("shapes_150x97.png")).string();
  browser.call("DOM.setFileInputFiles", {{"files", json::array({image})}, {"nodeId", input["nodeId"]}});
  ASSERT_TRUE(wait_until(browser, "document.getElementById('attachments').dataset.count === '1'"));

  // Record every change of the answer's text, to see it grow while streaming.
  browser.evaluate(R"(
    window.__lengths = [];
    new MutationObserver(() => {
      const answer = document.querySelector('.msg.assistant .content');
      if (answer) window.__lengths.push(answer.textContent.length);
    }).observe(document.getElementById('log'), {subtree: true, childList: true, characterData: true});
    document.getElementById('max-tokens').value = '256';  // long enough to span several frames at any speed
    document.getElementById('temperature').value = '0';
    document.getElementById('prompt').focus();
    true)");
  browser.call("Input.insertText", {{"text", "What is in this picture?"}});
  browser.call("Input.dispatchKeyEvent",
               {{"type", "keyDown"}, {"key", "Enter"}, {"code", "Enter"}, {"windowsVirtualKeyCode", 13}});
  ASSERT_TRUE(wait_until(browser, "['done', 'error'].includes(document.getElementById('status').dataset.state)"));
  EXPECT_EQ(browser.evaluate("document.getElementById('status').dataset.state"), "done")
      << browser.evaluate("document.querySelector('.msg.assistant').textContent");

  const std::string answer = browser.evaluate("document.querySelector('.msg.assistant .content').textContent");
  EXPECT_FALSE(answer.empty());
  EXPECT_EQ(browser.evaluate("document.querySelector('.msg.assistant').dataset.finish"), "length");
  const int chunks = std::stoi(browser.evaluate("document.querySelector('.msg.assistant').dataset.chunks")
                                   .get<std::string>());
  EXPECT_GE(chunks, 3) << "the answer must arrive as a stream of chunks";
  const json lengths = browser.evaluate("[...new Set(window.__lengths.filter((n) => n > 0))]");
  EXPECT_GE(lengths.size(), 2u) << "the answer must grow in the page while streaming: " << lengths;
  // The question and the uploaded image are shown; the stats line gives the visual-token count.
  EXPECT_EQ(browser.evaluate("document.querySelectorAll('.msg.user .thumbs img').length"), 1);
  const std::string stats = browser.evaluate("document.querySelector('.msg.assistant .stats').textContent");
  EXPECT_NE(stats.find(" visual tokens"), std::string::npos) << stats;
  EXPECT_GT(std::stoi(browser.evaluate("document.getElementById('status').dataset.visualTokens").get<std::string>()),
            0);

  // Grounding overlay: random weights never write boxes, so the page's drawing code gets a reply's parsed result.
  browser.evaluate(R"(drawGrounding(document.querySelector('.msg.assistant'), [{image_index: 0, width: 150,
      height: 97, items: [{type: 'box', label: 'shapes', bbox_pixels: [12, 10, 120, 80]},
                          {type: 'point', label: 'center', point_pixels: [75, 48]}]}]); true)");
  EXPECT_TRUE(wait_until(browser, "document.querySelector('.grounded') && "
                                  "document.querySelector('.grounded').dataset.items === '2'", 10));

  const json shot = browser.call("Page.captureScreenshot", {{"format", "png"}});
  const std::string png = server::decode_base64(shot["data"].get<std::string>(), "screenshot");
  ASSERT_GT(png.size(), 1000u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  const char* artifacts = std::getenv("QWEN3VL_ARTIFACTS_DIR");
  const std::filesystem::path dir =
      artifacts && *artifacts ? std::filesystem::path(artifacts) : std::filesystem::temp_directory_path() / "qwen3vl-artifacts";
  std::filesystem::create_directories(dir);
  testing::write_file((dir / "serve_page.png").string(), png);
  std::printf("screenshot: %s (%zu bytes); answer: %s\n", std::filesystem::absolute(dir / "serve_page.png").c_str(),
              png.size(), answer.c_str());
}

}  // namespace
}  // namespace qwen3vl
