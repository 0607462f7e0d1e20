// Checks on a request's line and headers that run before its body is read (httplib's pre-routing handler is
// called after the headers and before the body). Each refusal is an ApiError with the status to answer.
//
// - Host and Origin allow-lists stop DNS rebinding and cross-site requests: a page on another site can make a
//   browser send requests to a server on 127.0.0.1, but with its own name in Host (rebinding) or Origin (CSRF).
// - Body framing: httplib 0.11 reads chunked bodies and bodies without Content-Length with no size limit, and
//   inflates gzip/br bodies with no limit, so only plain bodies with a Content-Length within the limit are read.
// - JSON endpoints require Content-Type: application/json, which a cross-site "simple" request cannot send.
#pragma once

#include <httplib.h>

#include <cstddef>
#include <string>
#include <vector>

namespace qwen3vl {
namespace server {

struct ServerOptions;

class RequestGuard {
 public:
  explicit RequestGuard(const ServerOptions& options);

  // 403 unless the Host header names an allowed host (no Host: allowed; browsers always send one) and the Origin
  // header, when present, is the request's own origin or an allowed one.
  void check_host_and_origin(const httplib::Request& req) const;
  // 411 for Transfer-Encoding or a body method without Content-Length, 415 for a Content-Encoding other than
  // identity, 413 for a Content-Length over the limit, 400 for a malformed or repeated Content-Length.
  void check_body_framing(const httplib::Request& req) const;
  // 415 unless the Content-Type's media type is application/json (parameters such as charset are allowed).
  static void check_json_content_type(const httplib::Request& req);

  // The hosts allowed by default: the loopback names, and `bind_host` when it names one address.
  static std::vector<std::string> default_hosts(const std::string& bind_host);

 private:
  bool host_allowed(const std::string& host) const;
  bool origin_allowed(const std::string& origin, const std::string& host) const;

  std::vector<std::string> hosts_;    // lowercase "name" (any port) or "name:port"; "*" allows any
  std::vector<std::string> origins_;  // lowercase "scheme://name[:port]"; "*" allows any
  size_t max_body_bytes_;
};

}  // namespace server
}  // namespace qwen3vl
