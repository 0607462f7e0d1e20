// http(s) media fetched for a request (--allow-remote-media) without opening a way into the server's own network
// (SSRF): each URL's host is resolved once, every address it resolves to must be public (or inside a range the
// operator allows with --allow-media-address), the connection goes to the checked address (httplib's
// hostname-to-address map keeps the Host header and TLS name), redirects are followed here, a few at most, with the
// same checks on every hop, and one deadline covers all hops. After the address check every failure gives the same
// message, so answers of the target (status, body, connection errors) never reach the client.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "server_options.h"

namespace qwen3vl {
namespace server {

struct IpAddress {
  int family = 0;           // AF_INET or AF_INET6
  uint8_t bytes[16] = {};   // network order; 4 used for AF_INET
  std::string text() const;  // inet_ntop form
};

// An address range in CIDR form: "10.0.0.0/8", "fd00::/8", or one address ("127.0.0.2", "::1").
struct AddressRange {
  IpAddress base;
  int prefix = 0;
  bool contains(const IpAddress& address) const;
};

// Throws Error naming `what` (the flag) when `text` is not an address or CIDR range.
AddressRange parse_address_range(const std::string& text, const std::string& what);

// True only for globally reachable unicast addresses. IPv4: not in 0/8, 10/8, 100.64/10, 127/8, 169.254/16,
// 172.16/12, 192.0.0/24, 192.0.2/24, 192.88.99/24, 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4,
// 240/4 (with 255.255.255.255). IPv6: IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96) and NAT64
// (64:ff9b::/96) addresses are judged by their IPv4 address; otherwise only 2000::/3 outside 2001::/23,
// 2001:db8::/32, 2002::/16 (6to4) and 3fff::/20 (so ::, ::1, fc00::/7, fe80::/10, ff00::/8 and the rest are not).
bool is_public_address(const IpAddress& address);

struct MediaUrl;  // an http(s) URL split into its parts (media_fetch.cpp)

class RemoteMediaFetcher {
 public:
  using Deadline = std::chrono::steady_clock::time_point;
  static constexpr int kMaxRedirects = 5;

  // Parses the options' --allow-media-address ranges and --allowed-media-domains (Error naming the flag).
  explicit RemoteMediaFetcher(const ServerOptions& options);

  // The body of `url`'s HTTP 200 answer, at most max_bytes, received before `deadline`; `fetches_left` counts the
  // connections (hops) this request may still open. Throws ApiError 400 naming `where` and the URL part at fault.
  std::string fetch(const std::string& url, const std::string& where, size_t max_bytes, Deadline deadline,
                    int& fetches_left) const;

 private:
  // The address to connect to for `url`, after the domain and address checks (ApiError when refused).
  IpAddress checked_address(const MediaUrl& url, const std::string& where, bool redirected) const;

  std::vector<AddressRange> allowed_ranges_;
  std::vector<std::string> allowed_domains_;  // lower case; empty: any host
};

}  // namespace server
}  // namespace qwen3vl
