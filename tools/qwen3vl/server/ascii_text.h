// The text tests that HTTP header values and URL parts share: both compare case-insensitively and read bare numbers.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>

namespace qwen3vl {
namespace server {

inline std::string lowercase(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// True for one or more of 0-9 and nothing else (no sign, no spaces).
inline bool all_digits(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace server
}  // namespace qwen3vl
