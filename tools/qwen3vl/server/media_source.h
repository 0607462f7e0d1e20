// Where the bytes of an image (or, later, a video) come from: data: URLs (base64), local files under the folder
// the operator allows, and http(s) URLs when the operator enables fetching. Every refusal is an ApiError 400.
#pragma once

#include <cstddef>
#include <string>

#include "server_options.h"

namespace qwen3vl {
namespace server {

// Standard or URL-safe base64; whitespace is skipped, padding optional. Throws ApiError 400 naming `where`.
std::string decode_base64(const std::string& text, const std::string& where);

class MediaSource {
 public:
  explicit MediaSource(const ServerOptions& options);

  // The raw bytes behind `url` (at most max_bytes). `where` names the request part in errors.
  std::string load(const std::string& url, const std::string& where, size_t max_bytes) const;

 private:
  std::string load_file(const std::string& path, const std::string& where, size_t max_bytes) const;
  std::string load_remote(const std::string& url, const std::string& where, size_t max_bytes) const;

  std::string allowed_dir_;  // resolved real path, empty when local files are refused
  bool allow_remote_;
  double timeout_s_;
};

}  // namespace server
}  // namespace qwen3vl
