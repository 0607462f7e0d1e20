// A bare TCP client for the server tests that httplib::Client cannot express: chunked or trickled requests,
// headers without a body, several requests on one connection.
#pragma once

#include <chrono>
#include <string>

namespace qwen3vl {
namespace testing {

class RawConnection {
 public:
  explicit RawConnection(int port);  // connects to 127.0.0.1:port (ADD_FAILURE when it cannot)
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Sends all of `bytes`; false once the server has closed or reset the connection.
  bool send(const std::string& bytes);
  // Everything the server sends until it closes the connection or `timeout` passes.
  std::string receive_until_closed(std::chrono::milliseconds timeout);
  // True when the server closed the connection (EOF or reset) within `timeout`, reading and dropping any answer.
  bool closed_within(std::chrono::milliseconds timeout);
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// The status code of the first response in `bytes` ("HTTP/1.1 413 ..."), -1 when there is none.
int status_of(const std::string& bytes);
// How many responses `bytes` holds (status lines).
int count_responses(const std::string& bytes);

}  // namespace testing
}  // namespace qwen3vl
