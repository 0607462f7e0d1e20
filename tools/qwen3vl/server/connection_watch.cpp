#include "connection_watch.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdlib>

namespace qwen3vl {
namespace server {

namespace {

bool address_matches(const sockaddr_storage& address, const std::string& host, int port) {
  char text[INET6_ADDRSTRLEN] = {0};
  int actual_port = -1;
  if (address.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    actual_port = ntohs(in->sin_port);
  } else if (address.ss_family == AF_INET6) {
    const auto* in = reinterpret_cast<const sockaddr_in6*>(&address);
    inet_ntop(AF_INET6, &in->sin6_addr, text, sizeof text);
    actual_port = ntohs(in->sin6_port);
  } else {
    return false;
  }
  if (actual_port != port) return false;
  const std::string actual = text;
  // httplib may print a v4-mapped v6 address either way.
  return host.empty() || actual == host || actual == "::ffff:" + host || "::ffff:" + actual == host;
}

int find_socket(const std::string& remote_addr, int remote_port, int local_port) {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  int found = -1;
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0') continue;
    sockaddr_storage peer{}, local{};
    socklen_t peer_length = sizeof peer, local_length = sizeof local;
    if (getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &peer_length) != 0) continue;
    if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &local_length) != 0) continue;
    if (address_matches(peer, remote_addr, remote_port) && address_matches(local, "", local_port)) {
      found = static_cast<int>(fd);
      break;
    }
  }
  closedir(dir);
  return found;
}

}  // namespace

ConnectionWatch::ConnectionWatch(std::string remote_addr, int remote_port, int local_port)
    : remote_addr_(std::move(remote_addr)), remote_port_(remote_port), local_port_(local_port) {}

bool ConnectionWatch::closed(std::chrono::milliseconds interval) {
  if (closed_) return true;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_check_ < interval) return false;
  last_check_ = now;
  if (fd_ == -2) fd_ = find_socket(remote_addr_, remote_port_, local_port_);
  if (fd_ < 0) return false;
  pollfd probe{fd_, POLLRDHUP, 0};
  if (poll(&probe, 1, 0) > 0 && (probe.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) closed_ = true;
  return closed_;
}

}  // namespace server
}  // namespace qwen3vl
