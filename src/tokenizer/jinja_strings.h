// Python's str methods on UTF-8 text, for the chat-template interpreter (jinja_template.h). Positions and lengths
// count code points, as Python's do. Inputs are valid UTF-8 (the template is checked at parse time, and input JSON
// is decoded text).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qwen3vl::jinja::text {

std::vector<char32_t> code_points(std::string_view utf8);
std::string to_utf8(const std::vector<char32_t>& code_points, size_t begin, size_t end);
// len(s): the number of code points.
int64_t length(std::string_view utf8);

// str.isspace() for one character, and str.isprintable() (what repr() escapes).
bool is_space(char32_t c);
bool is_printable(char32_t c);

std::string upper(std::string_view utf8);
std::string lower(std::string_view utf8);
// str.capitalize(), str.title(), and jinja2's `title` filter (words split at whitespace and -({[<).
std::string capitalize(std::string_view utf8);
std::string title_method(std::string_view utf8);
std::string title_filter(std::string_view utf8);
bool is_lower(std::string_view utf8);
bool is_upper(std::string_view utf8);

// str.strip / lstrip / rstrip: `chars` absent strips whitespace.
std::string strip(std::string_view utf8, const std::optional<std::string>& chars, bool left, bool right);
// str.split / rsplit: `separator` absent splits at whitespace runs; maxsplit < 0 is unlimited. An empty separator
// is a ValueError in Python, reported as std::nullopt.
std::optional<std::vector<std::string>> split(std::string_view utf8, const std::optional<std::string>& separator,
                                              int64_t maxsplit, bool from_right);
std::vector<std::string> splitlines(std::string_view utf8, bool keepends);
// str.replace(old, new, count); count < 0 replaces all. `max_bytes` bounds the result (std::nullopt past it).
std::optional<std::string> replace(std::string_view utf8, std::string_view old_text, std::string_view new_text,
                                   int64_t count, size_t max_bytes);
// str.find / rfind / count over s[start:end] (Python slice bounds, code points); -1 when absent.
int64_t find(std::string_view utf8, std::string_view needle, std::optional<int64_t> start,
             std::optional<int64_t> end, bool from_right);
int64_t count(std::string_view utf8, std::string_view needle, std::optional<int64_t> start,
              std::optional<int64_t> end);
// str.center / ljust / rjust with a one-character fill.
std::string pad(std::string_view utf8, int64_t width, char32_t fill, int align);  // align: -1 left, 0 center, 1 right

// Python's slice index normalisation for a sequence of `size` items: fills start/stop for `step`, clamps them.
struct SliceBounds {
  int64_t start = 0, stop = 0, step = 1;
  int64_t count() const;
};
SliceBounds slice_bounds(int64_t size, std::optional<int64_t> start, std::optional<int64_t> stop,
                         std::optional<int64_t> step);

}  // namespace qwen3vl::jinja::text
