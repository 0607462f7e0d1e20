// Notices when the client of a request has gone away, so its queue place or generation can be given up.
//
// The socket comes from GuardedServer::current_socket() (http_listener.h): it stays open until the handler and its
// response stream return. A peer that closed its end shows as POLLRDHUP. Without a socket (-1), the client is
// assumed to be there.
#pragma once

#include <chrono>

namespace qwen3vl {
namespace server {

class ConnectionWatch {
 public:
  explicit ConnectionWatch(int socket) : fd_(socket) {}

  // True once the peer has closed the connection. Checks at most every `interval` (cheap in between).
  bool closed(std::chrono::milliseconds interval = std::chrono::milliseconds(100));

 private:
  int fd_;
  bool closed_ = false;
  std::chrono::steady_clock::time_point last_check_{};
};

}  // namespace server
}  // namespace qwen3vl
