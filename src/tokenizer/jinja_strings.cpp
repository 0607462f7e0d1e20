#include "tokenizer/jinja_strings.h"

#include <utf8proc.h>

#include <algorithm>

#include "tokenizer/unicode_text.h"

namespace qwen3vl::jinja::text {

std::vector<char32_t> code_points(std::string_view utf8) {
  std::vector<char32_t> out;
  out.reserve(utf8.size());
  for (size_t pos = 0; pos < utf8.size();) out.push_back(unicode::next_code_point(utf8, pos));
  return out;
}

std::string to_utf8(const std::vector<char32_t>& cps, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) unicode::append_utf8(out, cps[i]);
  return out;
}

int64_t length(std::string_view utf8) {
  // Continuation bytes (10xxxxxx) are the only ones that do not start a code point.
  return static_cast<int64_t>(std::count_if(utf8.begin(), utf8.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// CPython's _PyUnicode_IsWhitespace: bidirectional types WS, B, S and category Zs.
bool is_space(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

// CPython's _PyUnicode_IsPrintable: everything but categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs other than space.
bool is_printable(char32_t c) {
  if (c == ' ') return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS:
      return false;
    default:
      return true;
  }
}

namespace {

bool is_cased(char32_t c) {
  const auto category = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return category == UTF8PROC_CATEGORY_LU || category == UTF8PROC_CATEGORY_LL || category == UTF8PROC_CATEGORY_LT ||
         utf8proc_islower(static_cast<utf8proc_int32_t>(c)) || utf8proc_isupper(static_cast<utf8proc_int32_t>(c));
}

// Python maps case with the full SpecialCasing rules (ß -> SS); utf8proc has the one-to-one mappings, which agree
// everywhere else.
char32_t to_upper(char32_t c) { return static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c))); }
char32_t to_lower(char32_t c) { return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))); }
char32_t to_title(char32_t c) { return static_cast<char32_t>(utf8proc_totitle(static_cast<utf8proc_int32_t>(c))); }

template <typename Map>
std::string map_code_points(std::string_view utf8, Map map) {
  std::string out;
  out.reserve(utf8.size());
  for (size_t pos = 0; pos < utf8.size();) {
    const unsigned char byte = static_cast<unsigned char>(utf8[pos]);
    if (byte < 0x80) {  // ASCII fast path
      out += static_cast<char>(map(byte));
      ++pos;
    } else {
      unicode::append_utf8(out, map(unicode::next_code_point(utf8, pos)));
    }
  }
  return out;
}

bool in_set(char32_t c, const std::vector<char32_t>& set) { return std::find(set.begin(), set.end(), c) != set.end(); }

// Byte offset of code point `index` (clamped to the end).
size_t byte_offset(std::string_view utf8, int64_t index) {
  size_t pos = 0;
  for (int64_t i = 0; i < index && pos < utf8.size(); ++i) unicode::next_code_point(utf8, pos);
  return pos;
}

// s[start:end] with Python's clamping, as byte offsets; begin > end when the range is empty and start > len.
std::pair<size_t, size_t> byte_range(std::string_view utf8, std::optional<int64_t> start, std::optional<int64_t> end,
                                     int64_t* first_index) {
  const int64_t size = length(utf8);
  auto clamp = [size](std::optional<int64_t> index, int64_t fallback) {
    if (!index) return fallback;
    int64_t value = *index < 0 ? *index + size : *index;
    return std::clamp<int64_t>(value, 0, size);
  };
  const int64_t from = start && *start > size ? *start : clamp(start, 0);
  const int64_t to = clamp(end, size);
  *first_index = from;
  if (from > size) return {1, 0};
  return {byte_offset(utf8, from), byte_offset(utf8, std::max(from, to))};
}

}  // namespace

std::string upper(std::string_view utf8) { return map_code_points(utf8, to_upper); }
std::string lower(std::string_view utf8) { return map_code_points(utf8, to_lower); }

std::string capitalize(std::string_view utf8) {
  const std::vector<char32_t> cps = code_points(utf8);
  std::string out;
  for (size_t i = 0; i < cps.size(); ++i) unicode::append_utf8(out, i == 0 ? to_title(cps[i]) : to_lower(cps[i]));
  return out;
}

// CPython's do_title: a cased character after a cased one is lowered, any other is title-cased.
std::string title_method(std::string_view utf8) {
  std::string out;
  bool previous_cased = false;
  for (size_t pos = 0; pos < utf8.size();) {
    const char32_t c = unicode::next_code_point(utf8, pos);
    unicode::append_utf8(out, previous_cased ? to_lower(c) : to_title(c));
    previous_cased = is_cased(c);
  }
  return out;
}

// jinja2's do_title: re.split(r"([-\s({\[<]+)") and item[0].upper() + item[1:].lower() for every piece.
std::string title_filter(std::string_view utf8) {
  auto is_break = [](char32_t c) { return is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<'; };
  const std::vector<char32_t> cps = code_points(utf8);
  std::string out;
  bool piece_start = true;
  bool in_separator = false;
  for (char32_t c : cps) {
    const bool separator = is_break(c);
    if (separator != in_separator) piece_start = true;
    in_separator = separator;
    unicode::append_utf8(out, piece_start ? to_upper(c) : to_lower(c));
    piece_start = false;
  }
  return out;
}

bool is_lower(std::string_view utf8) {
  bool any_cased = false;
  for (size_t pos = 0; pos < utf8.size();) {
    const char32_t c = unicode::next_code_point(utf8, pos);
    if (utf8proc_isupper(static_cast<utf8proc_int32_t>(c)) ||
        utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_LT)
      return false;
    if (utf8proc_islower(static_cast<utf8proc_int32_t>(c))) any_cased = true;
  }
  return any_cased;
}

bool is_upper(std::string_view utf8) {
  bool any_cased = false;
  for (size_t pos = 0; pos < utf8.size();) {
    const char32_t c = unicode::next_code_point(utf8, pos);
    if (utf8proc_islower(static_cast<utf8proc_int32_t>(c)) ||
        utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_LT)
      return false;
    if (utf8proc_isupper(static_cast<utf8proc_int32_t>(c))) any_cased = true;
  }
  return any_cased;
}

std::string strip(std::string_view utf8, const std::optional<std::string>& chars, bool left, bool right) {
  const std::vector<char32_t> cps = code_points(utf8);
  const std::vector<char32_t> set = chars ? code_points(*chars) : std::vector<char32_t>{};
  auto strippable = [&](char32_t c) { return chars ? in_set(c, set) : is_space(c); };
  size_t begin = 0, end = cps.size();
  if (left)
    while (begin < end && strippable(cps[begin])) ++begin;
  if (right)
    while (end > begin && strippable(cps[end - 1])) --end;
  return to_utf8(cps, begin, end);
}

namespace {

std::vector<std::string> split_whitespace(const std::vector<char32_t>& cps, int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  const size_t n = cps.size();
  if (!from_right) {
    size_t i = 0;
    while (true) {
      while (i < n && is_space(cps[i])) ++i;
      if (i == n) break;
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
        size_t end = n;  // the rest, trailing whitespace kept
        parts.push_back(to_utf8(cps, i, end));
        break;
      }
      size_t j = i;
      while (j < n && !is_space(cps[j])) ++j;
      parts.push_back(to_utf8(cps, i, j));
      i = j;
    }
    return parts;
  }
  size_t i = n;
  while (true) {
    while (i > 0 && is_space(cps[i - 1])) --i;
    if (i == 0) break;
    if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
      parts.push_back(to_utf8(cps, 0, i));
      break;
    }
    size_t j = i;
    while (j > 0 && !is_space(cps[j - 1])) --j;
    parts.push_back(to_utf8(cps, j, i));
    i = j;
  }
  std::reverse(parts.begin(), parts.end());
  return parts;
}

}  // namespace

std::optional<std::vector<std::string>> split(std::string_view utf8, const std::optional<std::string>& separator,
                                              int64_t maxsplit, bool from_right) {
  if (!separator) return split_whitespace(code_points(utf8), maxsplit, from_right);
  const std::string& sep = *separator;
  if (sep.empty()) return std::nullopt;
  std::vector<std::string> parts;
  if (!from_right) {
    size_t begin = 0;
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      const size_t at = utf8.find(sep, begin);
      if (at == std::string_view::npos) break;
      parts.emplace_back(utf8.substr(begin, at - begin));
      begin = at + sep.size();
    }
    parts.emplace_back(utf8.substr(begin));
    return parts;
  }
  size_t end = utf8.size();
  while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
    if (end < sep.size()) break;
    const size_t at = utf8.rfind(sep, end - sep.size());
    if (at == std::string_view::npos) break;
    parts.emplace_back(utf8.substr(at + sep.size(), end - at - sep.size()));
    end = at;
  }
  parts.emplace_back(utf8.substr(0, end));
  std::reverse(parts.begin(), parts.end());
  return parts;
}

std::vector<std::string> splitlines(std::string_view utf8, bool keepends) {
  auto is_break = [](char32_t c) {
    return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85 || c == 0x2028 ||
           c == 0x2029;
  };
  const std::vector<char32_t> cps = code_points(utf8);
  std::vector<std::string> lines;
  size_t begin = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (!is_break(cps[i])) continue;
    size_t end = i + 1;
    if (cps[i] == '\r' && end < cps.size() && cps[end] == '\n') ++end;
    lines.push_back(to_utf8(cps, begin, keepends ? end : i));
    begin = end;
    i = end - 1;
  }
  if (begin < cps.size()) lines.push_back(to_utf8(cps, begin, cps.size()));
  return lines;
}

std::optional<std::string> replace(std::string_view utf8, std::string_view old_text, std::string_view new_text,
                                   int64_t count, size_t max_bytes) {
  std::string out;
  int64_t done = 0;
  auto within = [&] { return out.size() <= max_bytes; };
  if (old_text.empty()) {  // Python inserts `new` before every character and at the end
    for (size_t pos = 0; pos <= utf8.size();) {
      if (count < 0 || done < count) {
        out += new_text;
        ++done;
      }
      if (!within()) return std::nullopt;
      if (pos == utf8.size()) break;
      const size_t start = pos;
      unicode::next_code_point(utf8, pos);
      out += utf8.substr(start, pos - start);
    }
    return out;
  }
  size_t begin = 0;
  while (count < 0 || done < count) {
    const size_t at = utf8.find(old_text, begin);
    if (at == std::string_view::npos) break;
    out += utf8.substr(begin, at - begin);
    out += new_text;
    if (!within()) return std::nullopt;
    begin = at + old_text.size();
    ++done;
  }
  out += utf8.substr(begin);
  if (!within()) return std::nullopt;
  return out;
}

int64_t find(std::string_view utf8, std::string_view needle, std::optional<int64_t> start, std::optional<int64_t> end,
             bool from_right) {
  int64_t first = 0;
  const auto [begin, stop] = byte_range(utf8, start, end, &first);
  if (begin > stop) return -1;
  const std::string_view range = utf8.substr(begin, stop - begin);
  const size_t at = from_right ? range.rfind(needle) : range.find(needle);
  if (at == std::string_view::npos) return -1;
  return first + length(range.substr(0, at));
}

int64_t count(std::string_view utf8, std::string_view needle, std::optional<int64_t> start,
              std::optional<int64_t> end) {
  int64_t first = 0;
  const auto [begin, stop] = byte_range(utf8, start, end, &first);
  if (begin > stop) return 0;
  const std::string_view range = utf8.substr(begin, stop - begin);
  if (needle.empty()) return length(range) + 1;
  int64_t found = 0;
  for (size_t at = range.find(needle); at != std::string_view::npos; at = range.find(needle, at + needle.size()))
    ++found;
  return found;
}

std::string pad(std::string_view utf8, int64_t width, char32_t fill, int align) {
  const int64_t size = length(utf8);
  if (width <= size) return std::string(utf8);
  const int64_t margin = width - size;
  // CPython's str.center puts the odd character on the left when the width is odd.
  const int64_t left = align < 0 ? 0 : align > 0 ? margin : margin / 2 + (margin & width & 1);
  std::string fill_text;
  unicode::append_utf8(fill_text, fill);
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill_text;
  out += utf8;
  for (int64_t i = left; i < margin; ++i) out += fill_text;
  return out;
}

int64_t SliceBounds::count() const {
  if (step < 0) return stop < start ? (start - stop - 1) / -step + 1 : 0;
  return start < stop ? (stop - start - 1) / step + 1 : 0;
}

// CPython's PySlice_Unpack + PySlice_AdjustIndices (the caller rejects step == 0).
SliceBounds slice_bounds(int64_t size, std::optional<int64_t> start, std::optional<int64_t> stop,
                         std::optional<int64_t> step) {
  SliceBounds bounds;
  bounds.step = step.value_or(1);
  const bool backwards = bounds.step < 0;
  auto adjust = [&](std::optional<int64_t> index, int64_t fallback) {
    if (!index) return fallback;
    int64_t value = *index;
    if (value < 0) {
      value += size;
      if (value < 0) value = backwards ? -1 : 0;
    } else if (value >= size) {
      value = backwards ? size - 1 : size;
    }
    return value;
  };
  bounds.start = adjust(start, backwards ? size - 1 : 0);
  bounds.stop = adjust(stop, backwards ? -1 : size);
  return bounds;
}

}  // namespace qwen3vl::jinja::text
