#include "http_listener.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "api_error.h"

namespace qwen3vl {
namespace server {

namespace {

using Clock = std::chrono::steady_clock;

// Threads beyond max_connections: they only answer connections over the cap, so refusing never waits for a slow
// connection to end.
constexpr size_t kRefusingThreads = 4;
// How often a wait looks at whether the server is stopping.
constexpr std::chrono::milliseconds kStopCheck{100};

thread_local int t_current_socket = -1;
thread_local size_t t_reserved_body_memory = 0;  // released when the request's response has been written

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

void socket_address(int sock, bool remote, std::string& ip, int& port) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  auto* raw = reinterpret_cast<sockaddr*>(&address);
  ip.clear();
  port = -1;
  if ((remote ? getpeername(sock, raw, &length) : getsockname(sock, raw, &length)) != 0) return;
  char host[NI_MAXHOST], service[NI_MAXSERV];
  if (getnameinfo(raw, length, host, sizeof host, service, sizeof service, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return;
  ip = host;
  port = std::atoi(service);
}

// One connection's bytes, read against the deadline and byte budget of the current phase of the current request
// (request line + headers, then body). Bytes read ahead of the current request stay buffered for the next one.
class DeadlineStream final : public httplib::Stream {
 public:
  DeadlineStream(int sock, Clock::duration write_timeout, const std::atomic<socket_t>& listening)
      : sock_(sock), write_timeout_(write_timeout), listening_(listening) {}

  // From now on, at most `budget` bytes may be read, until `deadline`.
  void begin_phase(Clock::time_point deadline, size_t budget) {
    deadline_ = deadline;
    budget_ = budget;
    consumed_ = 0;
  }
  size_t consumed() const { return consumed_; }

  // Waits up to `timeout` for the first byte of the next request. False when none came or the server stops.
  bool wait_for_request(Clock::duration timeout) { return begin_ < end_ || wait(POLLIN, Clock::now() + timeout); }

  bool is_readable() const override { return begin_ < end_ || wait(POLLIN, deadline_); }
  // Writes do not give up when the server stops: answers to admitted requests still go out while it drains.
  bool is_writable() const override { return wait(POLLOUT, Clock::now() + write_timeout_, /*until_stop=*/false); }

  ssize_t read(char* ptr, size_t size) override {
    if (consumed_ >= budget_) return -1;  // the phase's byte cap: httplib sees a failed read and answers 400
    if (begin_ == end_) {
      if (!wait(POLLIN, deadline_)) return -1;
      ssize_t n;
      do n = recv(sock_, buffer_.data(), buffer_.size(), 0);
      while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      begin_ = 0;
      end_ = static_cast<size_t>(n);
    }
    const size_t n = std::min({size, end_ - begin_, budget_ - consumed_});
    std::memcpy(ptr, buffer_.data() + begin_, n);
    begin_ += n;
    consumed_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do n = send(sock_, ptr, size, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
  }
  using httplib::Stream::write;

  void get_remote_ip_and_port(std::string& ip, int& port) const override { socket_address(sock_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { socket_address(sock_, false, ip, port); }
  socket_t socket() const override { return sock_; }

 private:
  // Polls for `events` until `deadline`, in short slices so that a stopping server is noticed (with `until_stop`).
  bool wait(short events, Clock::time_point deadline, bool until_stop = true) const {
    while (!until_stop || listening_.load() != INVALID_SOCKET) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd probe{sock_, events, 0};
      const int ready = poll(&probe, 1, static_cast<int>(std::min(left, kStopCheck).count()));
      if (ready > 0) return true;
      if (ready < 0 && errno != EINTR) return false;
    }
    return false;
  }

  int sock_;
  Clock::duration write_timeout_;
  const std::atomic<socket_t>& listening_;
  Clock::time_point deadline_ = Clock::now();
  size_t budget_ = 0, consumed_ = 0;
  std::array<char, 16384> buffer_{};
  size_t begin_ = 0, end_ = 0;
};

}  // namespace

GuardedServer::GuardedServer(const ConnectionLimits& limits) : limits_(limits) {
  const size_t threads = limits.max_connections + kRefusingThreads;
  new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
}

int GuardedServer::current_socket() { return t_current_socket; }

bool GuardedServer::reserve_body_memory(size_t bytes) {
  size_t used = body_memory_.load();
  do {
    if (bytes > limits_.max_body_memory || used > limits_.max_body_memory - bytes) return false;
  } while (!body_memory_.compare_exchange_weak(used, used + bytes));
  t_reserved_body_memory += bytes;
  return true;
}

bool GuardedServer::process_and_close_socket(socket_t sock) {
  if (live_.fetch_add(1) >= limits_.max_connections) {
    refuse_connection(sock);
  } else {
    try {
      serve_connection(sock);
    } catch (...) {  // httplib's pool runs tasks without a try: an escaping exception would end the process
    }
  }
  t_current_socket = -1;
  body_memory_.fetch_sub(t_reserved_body_memory);  // left over when an exception ended the connection
  t_reserved_body_memory = 0;
  live_.fetch_sub(1);
  shutdown(sock, SHUT_RDWR);
  close(sock);
  return true;
}

void GuardedServer::serve_connection(socket_t sock) {
  // A response goes out in several writes (status and headers, then the body or each event); with Nagle's algorithm
  // a write after the first waits for the client's delayed ACK, 40 ms on Linux, on every kept-alive request.
  const int no_delay = 1;
  (void)setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &no_delay, sizeof no_delay);
  DeadlineStream stream(sock, seconds(double(write_timeout_sec_) + 1e-6 * double(write_timeout_usec_)), svr_sock_);
  t_current_socket = sock;
  for (size_t served = 0; served < keep_alive_max_count_; ++served) {
    if (!stream.wait_for_request(seconds(double(keep_alive_timeout_sec_)))) return;
    stream.begin_phase(Clock::now() + seconds(limits_.header_timeout_s), limits_.max_header_bytes);
    // Set once the headers are parsed: what the body should be, and the body's own deadline and cap.
    bool headers_read = false, length_framed = false;
    uint64_t body_length = 0;
    const auto begin_body = [&](httplib::Request& req) {
      headers_read = true;
      length_framed = !req.has_header("Transfer-Encoding");
      body_length = req.get_header_value<uint64_t>("Content-Length");
      stream.begin_phase(Clock::now() + seconds(limits_.body_timeout_s), limits_.max_body_bytes);
    };
    bool connection_closed = false;
    const bool last = served + 1 == keep_alive_max_count_;
    const bool served_ok = process_request(stream, last, connection_closed, begin_body);
    body_memory_.fetch_sub(t_reserved_body_memory);
    t_reserved_body_memory = 0;
    if (!served_ok || connection_closed) return;
    // A body left unread (the request was refused before it) must not be parsed as the next request.
    if (!headers_read || !length_framed || stream.consumed() != body_length) return;
  }
}

void GuardedServer::refuse_connection(socket_t sock) {
  refused_.fetch_add(1);
  const std::string body = error_body(503,
                                      "the server has " + std::to_string(limits_.max_connections) +
                                          " connections open, its limit; retry later",
                                      "", "too_many_connections");
  const std::string response = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                               "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n\r\n" + body;
  // Best effort and never blocking: this thread must be free for the next refusal at once.
  (void)send(sock, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace server
}  // namespace qwen3vl
