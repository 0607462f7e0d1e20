// A small Chrome DevTools Protocol client for the browser test: starts headless Chromium (Debian's `chromium`) with a
// throw-away profile, connects to its first page over a minimal WebSocket (RFC 6455 text frames) and sends commands.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>

#include "test_util.h"

namespace qwen3vl {
namespace testing {

// The Chromium binary, or "" when none is installed.
std::string find_chromium();

class HeadlessChromium {
 public:
  // Starts the browser; throws std::runtime_error when it does not come up within `timeout_s`.
  explicit HeadlessChromium(const std::string& binary, int timeout_s = 30);
  ~HeadlessChromium();
  HeadlessChromium(const HeadlessChromium&) = delete;
  HeadlessChromium& operator=(const HeadlessChromium&) = delete;

  // Sends a command to the page and returns its "result" (throws on a protocol error or after `timeout_s`).
  nlohmann::json call(const std::string& method, const nlohmann::json& params = nlohmann::json::object(),
                      int timeout_s = 30);
  // Runtime.evaluate of a JS expression, returning its value (awaiting a promise).
  nlohmann::json evaluate(const std::string& expression);

 private:
  void send_text(const std::string& text);
  std::string receive_text(int timeout_s);
  void read_exact(char* data, size_t size, int timeout_s);

  TempDir profile_;
  pid_t pid_ = -1;
  int socket_ = -1;
  int next_id_ = 1;
};

}  // namespace testing
}  // namespace qwen3vl
