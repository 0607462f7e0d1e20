// Errors: every failure the user can cause is reported as qwen3vl::Error with a one-line message
// that names the file, field, tensor or request part at fault. Frontends print it and exit non-zero.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace qwen3vl {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Builds a message from streamable parts: throw_error(path, ": tensor ", name, " has shape ", ...).
template <typename... Parts>
[[noreturn]] void throw_error(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  throw Error(out.str());
}

}  // namespace qwen3vl
