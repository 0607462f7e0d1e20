#include "http_request_guard.h"

#include <algorithm>

#include "api_error.h"
#include "ascii_text.h"
#include "server_options.h"

namespace qwen3vl {
namespace server {

namespace {

std::string trimmed(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

// "name:port" -> "name"; "[v6]:port" -> "[v6]"; an empty result when the port part is not a number.
std::string host_name(const std::string& host) {
  const size_t colon = host.rfind(':');
  const size_t bracket = host.rfind(']');
  if (colon == std::string::npos || (bracket != std::string::npos && colon < bracket)) return host;
  return all_digits(host.substr(colon + 1)) ? host.substr(0, colon) : "";
}

// The request methods httplib reads a body for.
bool reads_body(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE" || method == "PRI";
}

}  // namespace

RequestGuard::RequestGuard(const ServerOptions& options) : max_body_bytes_(options.max_body_bytes) {
  hosts_ = default_hosts(options.host);
  for (const std::string& host : options.allowed_hosts) hosts_.push_back(lowercase(host));
  for (const std::string& origin : options.allowed_origins) {
    std::string entry = lowercase(origin);
    while (!entry.empty() && entry.back() == '/') entry.pop_back();
    origins_.push_back(entry);
  }
}

std::vector<std::string> RequestGuard::default_hosts(const std::string& bind_host) {
  std::vector<std::string> hosts = {"localhost", "127.0.0.1", "[::1]"};
  const std::string host = lowercase(bind_host);
  if (host.empty() || host == "0.0.0.0" || host == "::" || host == "*") return hosts;  // every interface: no name
  hosts.push_back(host.find(':') != std::string::npos && host.front() != '[' ? "[" + host + "]" : host);
  return hosts;
}

bool RequestGuard::host_allowed(const std::string& host) const {
  const std::string name = host_name(host);
  if (name.empty()) return false;
  for (const std::string& entry : hosts_)
    if (entry == "*" || entry == host || entry == name) return true;
  return false;
}

bool RequestGuard::origin_allowed(const std::string& origin, const std::string& host) const {
  if (!host.empty() && (origin == "http://" + host || origin == "https://" + host)) return true;  // same origin
  return std::any_of(origins_.begin(), origins_.end(),
                     [&origin](const std::string& entry) { return entry == "*" || entry == origin; });
}

void RequestGuard::check_host_and_origin(const httplib::Request& req) const {
  if (req.get_header_value_count("Host") > 1) throw ApiError(400, "more than one Host header", "", "invalid_host");
  const std::string host = lowercase(trimmed(req.get_header_value("Host")));
  if (req.has_header("Host") && !host_allowed(host))
    throw ApiError(403,
                   "the Host \"" + host.substr(0, 256) +
                       "\" is not one this server answers to; the operator can allow it with --allowed-host",
                   "", "host_not_allowed");
  if (!req.has_header("Origin")) return;
  const std::string origin = lowercase(trimmed(req.get_header_value("Origin")));
  if (!origin_allowed(origin, host))
    throw ApiError(403,
                   "requests from the origin \"" + origin.substr(0, 256) +
                       "\" are not allowed; the operator can allow it with --allowed-origin",
                   "", "origin_not_allowed");
}

void RequestGuard::check_body_framing(const httplib::Request& req) const {
  if (req.has_header("Transfer-Encoding"))
    throw ApiError(411, "chunked request bodies are not accepted: send the body with a Content-Length", "",
                   "length_required");
  if (req.has_header("Content-Encoding") && lowercase(trimmed(req.get_header_value("Content-Encoding"))) != "identity")
    throw ApiError(415, "compressed request bodies (Content-Encoding) are not accepted: send the body uncompressed",
                   "", "unsupported_content_encoding");
  if (!req.has_header("Content-Length")) {
    if (reads_body(req.method))
      throw ApiError(411, "a " + req.method + " request needs a Content-Length", "", "length_required");
    return;
  }
  const std::string length = trimmed(req.get_header_value("Content-Length"));
  if (req.get_header_value_count("Content-Length") > 1 || !all_digits(length))
    throw ApiError(400, "malformed Content-Length", "", "invalid_content_length");
  // Compared as text first so that a length beyond 64 bits cannot wrap.
  if (length.size() > 19 || std::stoull(length) > max_body_bytes_)
    throw ApiError(413, "the request body exceeds the server's limit of " + std::to_string(max_body_bytes_) + " bytes",
                   "", "request_too_large");
}

void RequestGuard::check_json_content_type(const httplib::Request& req) {
  const std::string type = req.get_header_value("Content-Type");
  if (lowercase(trimmed(type.substr(0, type.find(';')))) == "application/json") return;
  throw ApiError(415,
                 "send the body as JSON with \"Content-Type: application/json\" (curl --json, or -H 'Content-Type: "
                 "application/json'); got " +
                     (type.empty() ? std::string("no Content-Type") : "\"" + type.substr(0, 256) + "\""),
                 "", "unsupported_media_type");
}

}  // namespace server
}  // namespace qwen3vl
