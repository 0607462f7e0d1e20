#include "media_fetch.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <initializer_list>
#include <optional>

#include "api_error.h"
#include "ascii_text.h"
#include "core/error.h"

namespace qwen3vl {
namespace server {

namespace {

std::string shorten(const std::string& url) { return url.size() > 64 ? url.substr(0, 61) + "..." : url; }

std::optional<IpAddress> parse_ip(const std::string& text) {
  IpAddress address;
  if (inet_pton(AF_INET, text.c_str(), address.bytes) == 1) {
    address.family = AF_INET;
    return address;
  }
  if (inet_pton(AF_INET6, text.c_str(), address.bytes) == 1) {
    address.family = AF_INET6;
    return address;
  }
  return std::nullopt;
}

IpAddress ipv4(const uint8_t* bytes) {
  IpAddress address;
  address.family = AF_INET;
  std::memcpy(address.bytes, bytes, 4);
  return address;
}

std::vector<AddressRange> ranges(std::initializer_list<const char*> texts) {
  std::vector<AddressRange> out;
  for (const char* text : texts) out.push_back(parse_address_range(text, "address table"));
  return out;
}

bool in_any(const IpAddress& address, const std::vector<AddressRange>& list) {
  return std::any_of(list.begin(), list.end(), [&](const AddressRange& range) { return range.contains(address); });
}

const AddressRange& ipv4_mapped() {
  static const AddressRange range = parse_address_range("::ffff:0:0/96", "address table");
  return range;
}

// An IPv4-mapped address (::ffff:a.b.c.d) is the IPv4 address itself for the operator's ranges.
IpAddress unmapped(const IpAddress& address) {
  return ipv4_mapped().contains(address) ? ipv4(address.bytes + 12) : address;
}

}  // namespace

std::string IpAddress::text() const {
  char buffer[INET6_ADDRSTRLEN] = {0};
  inet_ntop(family, bytes, buffer, sizeof buffer);
  return buffer;
}

bool AddressRange::contains(const IpAddress& address) const {
  if (address.family != base.family) return false;
  const int full_bytes = prefix / 8, rest_bits = prefix % 8;
  if (std::memcmp(address.bytes, base.bytes, static_cast<size_t>(full_bytes)) != 0) return false;
  if (rest_bits == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest_bits));
  return (address.bytes[full_bytes] & mask) == (base.bytes[full_bytes] & mask);
}

AddressRange parse_address_range(const std::string& text, const std::string& what) {
  const size_t slash = text.find('/');
  const std::optional<IpAddress> base = parse_ip(text.substr(0, slash));
  if (!base) throw_error(what, ": \"", text, "\" is not an IP address or CIDR range (e.g. 10.0.0.0/8, fd00::/8)");
  AddressRange range;
  range.base = *base;
  const int bits = base->family == AF_INET ? 32 : 128;
  range.prefix = bits;
  if (slash != std::string::npos) {
    const std::string digits = text.substr(slash + 1);
    if (!all_digits(digits) || digits.size() > 3 || std::stoi(digits) > bits)
      throw_error(what, ": \"", text, "\" has a bad prefix length (0 to ", bits, ")");
    range.prefix = std::stoi(digits);
  }
  return range;
}

bool is_public_address(const IpAddress& address) {
  // IANA's special-purpose registries (RFC 6890 and later): the ranges that are not globally reachable, or that
  // reach this machine or its networks. 240/4 includes the broadcast address.
  static const std::vector<AddressRange> ipv4_reserved =
      ranges({"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
              "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
              "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4"});
  static const std::vector<AddressRange> ipv4_embedding = ranges({"::ffff:0:0/96", "::/96", "64:ff9b::/96"});
  static const std::vector<AddressRange> global_unicast = ranges({"2000::/3"});
  static const std::vector<AddressRange> ipv6_reserved =
      ranges({"2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20"});
  if (address.family == AF_INET) return !in_any(address, ipv4_reserved);
  if (address.family != AF_INET6) return false;
  if (in_any(address, ipv4_embedding)) return is_public_address(ipv4(address.bytes + 12));
  return in_any(address, global_unicast) && !in_any(address, ipv6_reserved);
}

struct MediaUrl {
  std::string scheme, host;  // lower case; host without IPv6 brackets
  int port = 0;
  std::string target;        // path and query ("/" when absent)

  bool ipv6_literal() const { return host.find(':') != std::string::npos; }
  std::string origin() const {
    return scheme + "://" + (ipv6_literal() ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }
};

namespace {

// An absolute http(s) URL split into its parts. Errors quote the client's URL, never a redirect's: that came from
// the target.
MediaUrl parse_url(const std::string& text, const std::string& where, bool redirected) {
  auto refuse = [&](const std::string& what) {
    bad_request(where, redirected ? "the URL redirects to a URL that " + what
                                  : "the URL " + what + " (" + shorten(text) + ")",
                "invalid_media_url");
  };
  for (char c : text)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) refuse("contains a space or a control character");
  MediaUrl url;
  const size_t scheme_end = text.find("://");
  url.scheme = lowercase(text.substr(0, scheme_end));
  if (scheme_end == std::string::npos || (url.scheme != "http" && url.scheme != "https"))
    refuse("has a scheme other than http or https");
  const size_t authority_start = scheme_end + 3;
  const size_t authority_end = std::min(text.find_first_of("/?#", authority_start), text.size());
  const std::string authority = text.substr(authority_start, authority_end - authority_start);
  if (authority.find('@') != std::string::npos) refuse("carries credentials, which this server does not send");
  std::string port;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) refuse("has an unclosed [IPv6] host");
    url.host = lowercase(authority.substr(1, close - 1));
    const std::optional<IpAddress> literal = parse_ip(url.host);
    if (!literal || literal->family != AF_INET6) refuse("has a bad [IPv6] host");
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') refuse("has a bad port");
      port = authority.substr(close + 2);
    }
  } else {
    const size_t colon = authority.find(':');
    url.host = lowercase(authority.substr(0, colon));
    if (colon != std::string::npos) port = authority.substr(colon + 1);
    const bool name_chars = std::all_of(url.host.begin(), url.host.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    });
    if (url.host.empty() || !name_chars) refuse("has a bad host name");
  }
  url.port = url.scheme == "https" ? 443 : 80;
  if (!port.empty()) {
    if (!all_digits(port) || port.size() > 5 || std::stoi(port) < 1 || std::stoi(port) > 65535)
      refuse("has a bad port");
    url.port = std::stoi(port);
  }
  url.target = text.substr(authority_end, text.find('#', authority_end) - authority_end);
  if (url.target.empty() || url.target[0] != '/') url.target = "/" + url.target;
  return url;
}

// A Location header resolved against the URL it came from (absolute, scheme-relative, absolute-path or relative).
std::string redirect_target(const MediaUrl& from, const std::string& location) {
  const std::string scheme = lowercase(location.substr(0, location.find(':')));
  if (location.find("://") != std::string::npos && location.find("://") == scheme.size()) return location;
  if (location.compare(0, 2, "//") == 0) return from.scheme + ":" + location;
  if (!location.empty() && location[0] == '/') return from.origin() + location;
  const std::string path = from.target.substr(0, from.target.find('?'));
  return from.origin() + path.substr(0, path.rfind('/') + 1) + location;
}

std::vector<IpAddress> resolve(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &list) != 0) return {};
  std::vector<IpAddress> addresses;
  for (const addrinfo* entry = list; entry; entry = entry->ai_next) {
    IpAddress address;
    address.family = entry->ai_family;
    if (entry->ai_family == AF_INET)
      std::memcpy(address.bytes, &reinterpret_cast<const sockaddr_in*>(entry->ai_addr)->sin_addr, 4);
    else if (entry->ai_family == AF_INET6)
      std::memcpy(address.bytes, &reinterpret_cast<const sockaddr_in6*>(entry->ai_addr)->sin6_addr, 16);
    else
      continue;
    addresses.push_back(address);
  }
  freeaddrinfo(list);
  return addresses;
}

}  // namespace

RemoteMediaFetcher::RemoteMediaFetcher(const ServerOptions& options) {
  for (const std::string& range : options.allowed_media_addresses)
    allowed_ranges_.push_back(parse_address_range(range, "--allow-media-address"));
  for (const std::string& domain : options.allowed_media_domains) {
    if (domain.empty() || domain.find_first_of("/:@ ") != std::string::npos)
      throw_error("--allowed-media-domains: \"", domain, "\" is not a host name");
    allowed_domains_.push_back(lowercase(domain));
  }
}

IpAddress RemoteMediaFetcher::checked_address(const MediaUrl& url, const std::string& where, bool redirected) const {
  const std::string host = redirected ? "the host the URL redirects to" : "the URL's host";
  if (!allowed_domains_.empty() &&
      std::find(allowed_domains_.begin(), allowed_domains_.end(), url.host) == allowed_domains_.end())
    bad_request(where, host + " is not one this server fetches from (--allowed-media-domains)", "media_url_refused");
  const std::vector<IpAddress> addresses = resolve(url.host);
  if (addresses.empty()) bad_request(where, "cannot resolve " + host, "media_fetch_failed");
  for (const IpAddress& address : addresses)
    if (!in_any(unmapped(address), allowed_ranges_) && !is_public_address(address))
      bad_request(where,
                  host + " is a loopback, private, link-local or reserved address, which this server does not "
                         "fetch from (an operator can allow ranges with --allow-media-address)",
                  "media_url_refused");
  return addresses.front();  // the connection goes to this address and no other
}

std::string RemoteMediaFetcher::fetch(const std::string& first_url, const std::string& where, size_t max_bytes,
                                      Deadline deadline, int& fetches_left) const {
  // One message for every failure after the address check: what the target answered stays with the server.
  auto fetch_failed = [&]() {
    bad_request(where, "could not fetch " + shorten(first_url) + " (no HTTP 200 answer of at most " +
                           std::to_string(max_bytes) + " bytes within the media time limit)",
                "media_fetch_failed");
  };
  std::string url_text = first_url;
  for (int hop = 0; hop <= kMaxRedirects; ++hop) {
    const MediaUrl url = parse_url(url_text, where, hop > 0);
    const IpAddress address = checked_address(url, where, hop > 0);
    if (fetches_left <= 0)
      bad_request(where, "the request needs more remote fetches than this server allows per request",
                  "too_many_media_fetches");
    --fetches_left;
    const auto remaining = std::chrono::duration_cast<std::chrono::microseconds>(
        deadline - std::chrono::steady_clock::now());
    if (remaining.count() <= 0) fetch_failed();
    const time_t seconds = static_cast<time_t>(remaining.count() / 1000000);
    const time_t microseconds = static_cast<time_t>(remaining.count() % 1000000);

    httplib::Client client(url.origin());
    client.set_hostname_addr_map({{url.host, address.text()}});  // connect to the checked address only
    client.set_follow_location(false);
    client.set_decompress(false);
    client.set_connection_timeout(seconds, microseconds);
    client.set_read_timeout(seconds, microseconds);
    client.set_write_timeout(seconds, microseconds);
    int status = 0;
    std::string location;
    std::string bytes;
    const httplib::Result result = client.Get(
        url.target,
        [&](const httplib::Response& response) {
          status = response.status;
          location = response.get_header_value("Location");
          return status == 200;
        },
        [&](const char* data, size_t length) {
          if (length > max_bytes - bytes.size() || std::chrono::steady_clock::now() > deadline) return false;
          bytes.append(data, length);
          return true;
        });
    if (result && status == 200) return bytes;
    const bool redirect = status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
    if (!redirect || location.empty()) fetch_failed();
    url_text = redirect_target(url, location);
  }
  fetch_failed();
  return {};
}

}  // namespace server
}  // namespace qwen3vl
