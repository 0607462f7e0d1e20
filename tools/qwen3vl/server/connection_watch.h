// Notices when the client of a request has gone away, so its queue place or generation can be given up.
//
// cpp-httplib 0.11 does not hand the connection's socket to handlers, so the socket is found once, by matching the
// request's local and remote address and port against this process's open sockets (the 4-tuple is unique while
// the handler runs, and the socket stays open until it returns). A peer that closed its end shows as POLLRDHUP.
// When no socket matches (an unusual transport), the client is assumed to be there.
#pragma once

#include <chrono>
#include <string>

namespace qwen3vl {
namespace server {

class ConnectionWatch {
 public:
  ConnectionWatch(std::string remote_addr, int remote_port, int local_port);

  // True once the peer has closed the connection. Checks at most every `interval` (cheap in between).
  bool closed(std::chrono::milliseconds interval = std::chrono::milliseconds(100));

 private:
  std::string remote_addr_;
  int remote_port_, local_port_;
  int fd_ = -2;  // -2: not looked up yet, -1: not found
  bool closed_ = false;
  std::chrono::steady_clock::time_point last_check_{};
};

}  // namespace server
}  // namespace qwen3vl
