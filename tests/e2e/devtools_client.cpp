#include "e2e/devtools_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <stdexcept>
#include <thread>

namespace qwen3vl {
namespace testing {

std::string find_chromium() {
  for (const char* path : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (access(path, X_OK) == 0) return path;
  return "";
}

HeadlessChromium::HeadlessChromium(const std::string& binary, int timeout_s) {
  const std::string profile = "--user-data-dir=" + profile_.path();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    const int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, 1);
    dup2(null_fd, 2);
    execl(binary.c_str(), binary.c_str(), "--headless=new", "--no-sandbox", "--disable-gpu",
          "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
          "--window-size=1100,800", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
          profile.c_str(), "about:blank", static_cast<char*>(nullptr));
    _exit(127);
  }
  // Chromium writes its DevTools port to the profile folder once it listens.
  int port = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(profile_.file("DevToolsActivePort"));
    if (in >> port && port > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (port <= 0) throw std::runtime_error("chromium did not open a DevTools port");
  httplib::Client http("127.0.0.1", port);
  std::string page_path;
  while (page_path.empty() && std::chrono::steady_clock::now() < deadline) {
    if (auto list = http.Get("/json/list"); list && list->status == 200) {
      for (const auto& target : nlohmann::json::parse(list->body, nullptr, false))
        if (target.value("type", "") == "page") {
          const std::string url = target.value("webSocketDebuggerUrl", "");
          page_path = url.substr(url.find('/', std::string("ws://").size()));
          break;
        }
    }
    if (page_path.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (page_path.empty()) throw std::runtime_error("chromium has no page target");

  socket_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(socket_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
    throw std::runtime_error("cannot connect to the DevTools port");
  const std::string handshake = "GET " + page_path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                                "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  if (::send(socket_, handshake.data(), handshake.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(handshake.size()))
    throw std::runtime_error("WebSocket handshake: send failed");
  std::string reply;
  char c;
  while (reply.size() < 4 || reply.compare(reply.size() - 4, 4, "\r\n\r\n") != 0) {
    read_exact(&c, 1, timeout_s);
    reply += c;
  }
  if (reply.find(" 101 ") == std::string::npos) throw std::runtime_error("WebSocket handshake refused: " + reply);
}

HeadlessChromium::~HeadlessChromium() {
  if (socket_ >= 0) close(socket_);
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void HeadlessChromium::send_text(const std::string& text) {
  std::string frame;
  frame += static_cast<char>(0x81);  // FIN, text
  const uint64_t n = text.size();
  if (n < 126) {
    frame += static_cast<char>(0x80 | n);
  } else if (n < 65536) {
    frame += static_cast<char>(0x80 | 126);
    frame += static_cast<char>(n >> 8);
    frame += static_cast<char>(n & 255);
  } else {
    frame += static_cast<char>(0x80 | 127);
    for (int shift = 56; shift >= 0; shift -= 8) frame += static_cast<char>((n >> shift) & 255);
  }
  static thread_local std::mt19937 rng{std::random_device{}()};
  char mask[4];
  for (char& m : mask) m = static_cast<char>(rng() & 255);
  frame.append(mask, 4);
  for (size_t i = 0; i < n; ++i) frame += static_cast<char>(text[i] ^ mask[i % 4]);
  if (::send(socket_, frame.data(), frame.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(frame.size()))
    throw std::runtime_error("DevTools: send failed");
}

void HeadlessChromium::read_exact(char* data, size_t size, int timeout_s) {
  size_t done = 0;
  while (done < size) {
    pollfd p{socket_, POLLIN, 0};
    if (poll(&p, 1, timeout_s * 1000) <= 0) throw std::runtime_error("DevTools: timed out");
    const ssize_t got = recv(socket_, data + done, size - done, 0);
    if (got <= 0) throw std::runtime_error("DevTools: connection closed");
    done += static_cast<size_t>(got);
  }
}

std::string HeadlessChromium::receive_text(int timeout_s) {
  std::string message;
  while (true) {
    unsigned char head[2];
    read_exact(reinterpret_cast<char*>(head), 2, timeout_s);
    uint64_t n = head[1] & 127;
    if (n == 126 || n == 127) {
      unsigned char ext[8];
      const size_t bytes = n == 126 ? 2 : 8;
      read_exact(reinterpret_cast<char*>(ext), bytes, timeout_s);
      n = 0;
      for (size_t i = 0; i < bytes; ++i) n = (n << 8) | ext[i];
    }
    std::string payload(n, '\0');
    if (n) read_exact(payload.data(), n, timeout_s);
    const int opcode = head[0] & 15;
    if (opcode == 8) throw std::runtime_error("DevTools: the browser closed the connection");
    if (opcode == 0 || opcode == 1) message += payload;
    if ((head[0] & 0x80) && (opcode == 0 || opcode == 1)) return message;
  }
}

nlohmann::json HeadlessChromium::call(const std::string& method, const nlohmann::json& params, int timeout_s) {
  const int id = next_id_++;
  send_text(nlohmann::json{{"id", id}, {"method", method}, {"params", params}}.dump());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    const nlohmann::json message = nlohmann::json::parse(receive_text(timeout_s), nullptr, false);
    if (!message.is_object() || message.value("id", -1) != id) continue;  // events and other replies
    if (message.contains("error")) throw std::runtime_error(method + ": " + message["error"].dump());
    return message["result"];
  }
  throw std::runtime_error(method + ": no reply");
}

nlohmann::json HeadlessChromium::evaluate(const std::string& expression) {
  const nlohmann::json result =
      call("Runtime.evaluate", {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}});
  if (result.contains("exceptionDetails"))
    throw std::runtime_error("JS exception in: " + expression + ": " + result["exceptionDetails"].dump());
  return result["result"].value("value", nlohmann::json());
}

}  // namespace testing
}  // namespace qwen3vl
