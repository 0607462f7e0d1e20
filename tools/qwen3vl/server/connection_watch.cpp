#include "connection_watch.h"

#include <poll.h>

namespace qwen3vl {
namespace server {

bool ConnectionWatch::closed(std::chrono::milliseconds interval) {
  if (closed_ || fd_ < 0) return closed_;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_check_ < interval) return false;
  last_check_ = now;
  pollfd probe{fd_, POLLRDHUP, 0};
  if (poll(&probe, 1, 0) > 0 && (probe.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) closed_ = true;
  return closed_;
}

}  // namespace server
}  // namespace qwen3vl
