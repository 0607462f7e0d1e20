// The socket side of `qwen3vl serve`: cpp-httplib's request parser and routing, with deadlines and byte caps that
// cpp-httplib 0.11 lacks.
//
// In httplib 0.11 a read timeout applies to each recv(), so a client that sends one byte a second holds a thread
// for ever; a header line or a chunked body grows without bound; and accepted connections queue without limit
// for a fixed number of threads. GuardedServer overrides httplib::Server::process_and_close_socket (a virtual
// meant for SSLServer) with its own keep-alive loop over its own Stream:
//   - the request line and headers must arrive within header_timeout_s and max_header_bytes;
//   - the body must arrive within body_timeout_s of the headers, and no more than max_body_bytes is ever handed
//     to httplib, whatever the framing (chunked, no Content-Length);
//   - at most max_connections connections are served at once, each on its own thread from the start (the pool
//     has that many threads, plus a few that only refuse), so slow clients cannot delay others; a connection
//     beyond the cap is answered 503 and closed at once;
//   - a connection whose request body was not read to its end (a refused request) is closed after the answer,
//     so the unread body is never parsed as the next request;
//   - the bodies of all requests in flight together stay within max_body_memory (reserve_body_memory), so many
//     connections with large bodies cannot add up to more memory than that (parsing one takes a few times its size).
#pragma once

#include <httplib.h>

#include <atomic>
#include <cstddef>

namespace qwen3vl {
namespace server {

struct ConnectionLimits {
  size_t max_connections = 64;
  double header_timeout_s = 10.0;
  double body_timeout_s = 60.0;
  size_t max_header_bytes = 64u << 10;
  size_t max_body_bytes = 64u << 20;
  size_t max_body_memory = 256u << 20;
};

class GuardedServer : public httplib::Server {
 public:
  explicit GuardedServer(const ConnectionLimits& limits);

  size_t live_connections() const { return live_.load(); }
  size_t refused_connections() const { return refused_.load(); }

  // The socket of the connection whose request the calling thread is handling, -1 on any other thread. Handlers
  // use it to notice a client that has gone away.
  static int current_socket();
  // Reserves `bytes` of max_body_memory for the request the calling thread is handling, until its response has
  // been written. False, with nothing reserved, when the requests in flight already hold too much of it.
  bool reserve_body_memory(size_t bytes);

 private:
  bool process_and_close_socket(socket_t sock) override;
  void serve_connection(socket_t sock);
  void refuse_connection(socket_t sock);

  ConnectionLimits limits_;
  std::atomic<size_t> live_{0};
  std::atomic<size_t> refused_{0};
  std::atomic<size_t> body_memory_{0};
};

}  // namespace server
}  // namespace qwen3vl
