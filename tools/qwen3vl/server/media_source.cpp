#include "media_source.h"

#include <httplib.h>
#include <sys/stat.h>

#include <cctype>
#include <climits>
#include <cstdlib>
#include <fstream>

#include "api_error.h"

namespace qwen3vl {
namespace server {

namespace {

int base64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

bool starts_with_nocase(const std::string& text, const std::string& prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  return true;
}

std::string percent_decode(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::string real_path(const std::string& path) {
  char buffer[PATH_MAX];
  return realpath(path.c_str(), buffer) ? std::string(buffer) : std::string();
}

std::string shorten(const std::string& url) { return url.size() > 64 ? url.substr(0, 61) + "..." : url; }

}  // namespace

std::string decode_base64(const std::string& text, const std::string& where) {
  std::string out;
  out.reserve(text.size() / 4 * 3 + 3);
  uint32_t buffer = 0;
  int bits = 0;
  bool padding = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      padding = true;
      continue;
    }
    const int value = base64_value(c);
    if (value < 0 || padding)
      bad_request(where, "invalid base64 data at offset " + std::to_string(i), "invalid_base64");
    buffer = (buffer << 6) | static_cast<uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  if (bits >= 6) bad_request(where, "truncated base64 data", "invalid_base64");
  return out;
}

MediaSource::MediaSource(const ServerOptions& options)
    : allow_remote_(options.allow_remote_media), timeout_s_(options.media_timeout_s) {
  if (!options.allowed_media_dir.empty()) allowed_dir_ = real_path(options.allowed_media_dir);
}

std::string MediaSource::load(const std::string& url, const std::string& where, size_t max_bytes) const {
  if (starts_with_nocase(url, "data:")) {
    const size_t comma = url.find(',');
    if (comma == std::string::npos) bad_request(where, "a data: URL without ','", "invalid_data_url");
    const std::string header = url.substr(5, comma - 5);
    if (header.size() < 7 || !starts_with_nocase(header.substr(header.size() - 7), ";base64"))
      bad_request(where, "only base64 data: URLs are supported (data:<type>;base64,...)", "invalid_data_url");
    if ((url.size() - comma - 1) / 4 * 3 > max_bytes + 3)
      throw ApiError(413, where + ": the media data exceeds " + std::to_string(max_bytes) + " bytes", where,
                     "media_too_large");
    std::string bytes = decode_base64(url.substr(comma + 1), where);
    if (bytes.empty()) bad_request(where, "the data: URL holds no data", "invalid_data_url");
    return bytes;
  }
  if (starts_with_nocase(url, "http://") || starts_with_nocase(url, "https://")) {
    if (!allow_remote_)
      bad_request(where, "remote media URLs are disabled on this server (" + shorten(url) +
                             "); send the image as a base64 data: URL, or start the server with --allow-remote-media",
                  "remote_media_disabled");
    return load_remote(url, where, max_bytes);
  }
  if (starts_with_nocase(url, "file://")) return load_file(percent_decode(url.substr(7)), where, max_bytes);
  if (!url.empty() && url[0] == '/') return load_file(url, where, max_bytes);
  bad_request(where, "unsupported media source \"" + shorten(url) +
                         "\" (expected a data: URL, an http(s) URL or a file under the allowed media folder)",
              "invalid_media_url");
}

std::string MediaSource::load_file(const std::string& path, const std::string& where, size_t max_bytes) const {
  if (allowed_dir_.empty())
    bad_request(where, "local files are not allowed on this server (start it with --allowed-media-dir DIR)",
                "local_media_disabled");
  const std::string resolved = real_path(path);
  // Refused and missing files get the same message, so a client cannot probe the file system.
  const std::string refused = "no such file under the allowed media folder: " + shorten(path);
  if (resolved.empty() || resolved.compare(0, allowed_dir_.size() + 1, allowed_dir_ + "/") != 0)
    bad_request(where, refused, "media_not_found");
  struct stat info {};
  if (stat(resolved.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) bad_request(where, refused, "media_not_found");
  if (static_cast<size_t>(info.st_size) > max_bytes)
    throw ApiError(413, where + ": the file is larger than " + std::to_string(max_bytes) + " bytes", where,
                   "media_too_large");
  std::ifstream in(resolved, std::ios::binary);
  std::string bytes(static_cast<size_t>(info.st_size), '\0');
  if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size())))
    bad_request(where, "cannot read " + shorten(path), "media_not_found");
  return bytes;
}

std::string MediaSource::load_remote(const std::string& url, const std::string& where, size_t max_bytes) const {
  const size_t scheme_end = url.find("://") + 3;
  const size_t path_start = url.find('/', scheme_end);
  const std::string origin = url.substr(0, path_start);
  const std::string path = path_start == std::string::npos ? "/" : url.substr(path_start);
  httplib::Client client(origin);
  const time_t seconds = static_cast<time_t>(timeout_s_ < 1 ? 1 : timeout_s_);
  client.set_connection_timeout(seconds);
  client.set_read_timeout(seconds);
  client.set_follow_location(true);
  std::string bytes;
  bool too_large = false;
  auto result = client.Get(path.c_str(), [&](const char* data, size_t length) {
    if (bytes.size() + length > max_bytes) {
      too_large = true;
      return false;
    }
    bytes.append(data, length);
    return true;
  });
  if (too_large)
    throw ApiError(413, where + ": the remote media is larger than " + std::to_string(max_bytes) + " bytes", where,
                   "media_too_large");
  if (!result) bad_request(where, "cannot fetch " + shorten(url) + ": " + httplib::to_string(result.error()),
                           "media_fetch_failed");
  if (result->status != 200)
    bad_request(where, "fetching " + shorten(url) + " returned HTTP " + std::to_string(result->status),
                "media_fetch_failed");
  return bytes;
}

}  // namespace server
}  // namespace qwen3vl
