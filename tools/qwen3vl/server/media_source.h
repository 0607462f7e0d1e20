// Where the bytes of an image or video come from: data: URLs (base64), local files under the folder the operator
// allows, and http(s) URLs when the operator enables fetching (media_fetch.h). Every refusal is an ApiError.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "media_fetch.h"
#include "server_options.h"

namespace qwen3vl {
namespace server {

// Standard or URL-safe base64; whitespace is skipped, padding optional. Throws ApiError 400 naming `where`.
std::string decode_base64(const std::string& text, const std::string& where);

// What all media of one request may use together: one deadline for loading, decoding, resizing and encoding them
// (--media-timeout, from the first media item on), the bytes read from files and URLs (--max-media-bytes; data:
// URLs are already bounded by the body limit) and the connections opened for remote media (--max-media-fetches).
struct MediaBudget {
  MediaBudget(double timeout_s, size_t max_bytes, int max_fetches);
  explicit MediaBudget(const ServerOptions& options)
      : MediaBudget(options.media_timeout_s, options.max_media_bytes, options.max_media_fetches) {}

  std::chrono::steady_clock::time_point deadline;
  size_t bytes_left;
  int fetches_left;

  // Throws ApiError 400 "media_timeout" naming `where` once the deadline has passed.
  void check_deadline(const std::string& where) const;
};

class MediaSource {
 public:
  // Throws Error naming the flag when --allowed-media-dir is not a folder or a remote-media option is malformed.
  explicit MediaSource(const ServerOptions& options);

  // The raw bytes behind `url`: at most max_bytes, and what is read from a file or URL counts against `budget`.
  // `where` names the request part in errors.
  std::string load(const std::string& url, const std::string& where, size_t max_bytes, MediaBudget& budget) const;
  // The same with a budget of its own.
  std::string load(const std::string& url, const std::string& where, size_t max_bytes) const;

 private:
  std::string load_file(const std::string& path, const std::string& where, size_t max_bytes) const;

  std::string allowed_dir_;  // resolved real path, empty when local files are refused
  bool allow_remote_;
  RemoteMediaFetcher fetcher_;
  double timeout_s_;         // the per-request limits, for load() without a budget
  size_t max_media_bytes_;
  int max_media_fetches_;
};

}  // namespace server
}  // namespace qwen3vl
