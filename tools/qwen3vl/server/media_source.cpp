#include "media_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>

#include "api_error.h"
#include "core/error.h"

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

MediaBudget::MediaBudget(double timeout_s, size_t max_bytes, int max_fetches)
    : deadline(std::chrono::steady_clock::now() +
               std::chrono::microseconds(static_cast<int64_t>(std::min(timeout_s, 1e9) * 1e6))),
      bytes_left(max_bytes), fetches_left(max_fetches) {}

void MediaBudget::check_deadline(const std::string& where) const {
  if (std::chrono::steady_clock::now() > deadline)
    bad_request(where, "loading and decoding the request's media took longer than the server's limit",
                "media_timeout");
}

MediaSource::MediaSource(const ServerOptions& options)
    : allow_remote_(options.allow_remote_media), fetcher_(options), timeout_s_(options.media_timeout_s),
      max_media_bytes_(options.max_media_bytes), max_media_fetches_(options.max_media_fetches) {
  if (options.allowed_media_dir.empty()) return;
  allowed_dir_ = real_path(options.allowed_media_dir);
  struct stat info {};
  if (allowed_dir_.empty() || stat(allowed_dir_.c_str(), &info) != 0 || !S_ISDIR(info.st_mode))
    throw_error("--allowed-media-dir: ", options.allowed_media_dir, ": no such folder");
  if (allowed_dir_.back() != '/') allowed_dir_ += '/';  // "/" stays "/": every absolute path is inside it
}

std::string MediaSource::load(const std::string& url, const std::string& where, size_t max_bytes) const {
  MediaBudget budget(timeout_s_, max_media_bytes_, max_media_fetches_);
  return load(url, where, max_bytes, budget);
}

std::string MediaSource::load(const std::string& url, const std::string& where, size_t max_bytes,
                              MediaBudget& budget) const {
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
  budget.check_deadline(where);
  std::string bytes;
  if (starts_with_nocase(url, "http://") || starts_with_nocase(url, "https://")) {
    if (!allow_remote_)
      bad_request(where, "remote media URLs are disabled on this server (" + shorten(url) +
                             "); send the image as a base64 data: URL, or start the server with --allow-remote-media",
                  "remote_media_disabled");
    bytes = fetcher_.fetch(url, where, std::min(max_bytes, budget.bytes_left), budget.deadline, budget.fetches_left);
  } else if (starts_with_nocase(url, "file://")) {
    // file:///abs/path or file://localhost/abs/path; any other host is not this machine.
    std::string path = percent_decode(url.substr(7));
    if (starts_with_nocase(path, "localhost/")) path = path.substr(9);
    if (path.empty() || path[0] != '/')
      bad_request(where, "a file: URL names this machine's files only (file:///path)", "invalid_media_url");
    bytes = load_file(path, where, std::min(max_bytes, budget.bytes_left));
  } else if (!url.empty() && url[0] == '/') {
    bytes = load_file(url, where, std::min(max_bytes, budget.bytes_left));
  } else {
    bad_request(where, "unsupported media source \"" + shorten(url) +
                           "\" (expected a data: URL, an http(s) URL or a file under the allowed media folder)",
                "invalid_media_url");
  }
  budget.bytes_left -= bytes.size();
  return bytes;
}

std::string MediaSource::load_file(const std::string& path, const std::string& where, size_t max_bytes) const {
  if (allowed_dir_.empty())
    bad_request(where, "local files are not allowed on this server (start it with --allowed-media-dir DIR)",
                "local_media_disabled");
  // Refused and missing files get the same message, so a client cannot probe the file system.
  auto refuse = [&]() { bad_request(where, "no such file under the allowed media folder: " + shorten(path),
                                    "media_not_found"); };
  auto inside = [&](const std::string& resolved) { return resolved.compare(0, allowed_dir_.size(), allowed_dir_) == 0; };
  if (!inside(real_path(path))) refuse();
  // The check is made again on the file actually opened (its /proc/self/fd link), so a symlink swapped in between
  // cannot lead outside the folder. O_NONBLOCK: opening a FIFO must not wait for a writer.
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) refuse();
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  struct stat info {};
  if (!inside(real_path("/proc/self/fd/" + std::to_string(fd))) || fstat(fd, &info) != 0 || !S_ISREG(info.st_mode))
    refuse();
  if (static_cast<uint64_t>(info.st_size) > max_bytes)
    throw ApiError(413, where + ": the file is larger than " + std::to_string(max_bytes) + " bytes", where,
                   "media_too_large");
  std::string bytes(static_cast<size_t>(info.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) bad_request(where, "cannot read " + shorten(path), "media_not_found");
    done += static_cast<size_t>(n);
  }
  return bytes;
}

}  // namespace server
}  // namespace qwen3vl
