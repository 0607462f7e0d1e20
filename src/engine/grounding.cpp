#include "engine/grounding.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <string_view>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/error.h"

namespace qwen3vl {
namespace {

// ordered_json keeps keys in reply order (extra_json) and in the documented output order.
using json = nlohmann::ordered_json;

constexpr double kGridMax = 1000.0;
const char* const kBoxKey = "bbox_2d";
const char* const kPointKey = "point_2d";

// A balanced {...} in the reply: [begin, end) as byte offsets into the reply.
struct Span {
  size_t begin;
  size_t end;
  size_t depth;  // objects around it (0: outermost)
};

// Objects nested deeper than this are not parsed on their own when the objects around them fail to parse.
constexpr size_t kMaxParseDepth = 64;

std::string dump_text(const json& value) {
  // Labels come from a model and may hold broken UTF-8; never let dump() throw on it.
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Valid JSON never has a comma right before } or ]; models sometimes write one. Strings are left alone.
std::string strip_trailing_commas(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  bool in_string = false;
  bool escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == ',') {
      size_t next = i + 1;
      while (next < text.size() && std::isspace(static_cast<unsigned char>(text[next]))) ++next;
      if (next < text.size() && (text[next] == '}' || text[next] == ']')) continue;
    }
    out += c;
  }
  return out;
}

class Parser {
 public:
  Parser(const std::string& reply, int64_t width, int64_t height)
      : reply_(reply), width_(static_cast<double>(width)), height_(static_cast<double>(height)) {}

  GroundingResult run() {
    // A thinking model's reasoning may hold draft boxes: only the answer after the last </think> counts.
    size_t start = 0;
    const std::string think_end = "</think>";
    const size_t think = reply_.rfind(think_end);
    if (think != std::string::npos) start = think + think_end.size();
    // Fences only delimit: each piece between ``` markers is scanned on its own, so prose in one piece
    // (an unmatched brace or quote) cannot swallow the JSON of the next. The "json" language tag holds no braces.
    while (start <= reply_.size()) {
      size_t fence = reply_.find("```", start);
      if (fence == std::string::npos) fence = reply_.size();
      scan_segment(start, fence);
      start = fence + 3;
    }
    std::stable_sort(warnings_.begin(), warnings_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& warning : warnings_) result_.warnings.push_back(std::move(warning.second));
    return std::move(result_);
  }

 private:
  void warn(size_t offset, std::string message) { warnings_.emplace_back(offset, std::move(message)); }

  // Finds every balanced object in [begin, end), parses the outermost ones that mention a grounding key (falling
  // back to the objects inside when one does not parse), and reports grounding keys nothing could be read from.
  void scan_segment(size_t begin, size_t end) {
    std::vector<Span> spans;
    std::vector<size_t> open;  // offsets of unclosed '{', ascending
    bool in_string = false;
    bool escaped = false;
    for (size_t i = begin; i < end; ++i) {
      const char c = reply_[i];
      if (in_string) {
        if (escaped) escaped = false;
        else if (c == '\\') escaped = true;
        else if (c == '"') in_string = false;
        continue;
      }
      if (c == '"' && !open.empty()) {
        in_string = true;  // quotes in prose outside any object are not strings
      } else if (c == '{') {
        open.push_back(i);
      } else if (c == '}' && !open.empty()) {
        const size_t object_begin = open.back();
        open.pop_back();
        spans.push_back({object_begin, i + 1, open.size()});
      }
    }
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });

    std::vector<size_t> keys;  // offsets of "bbox_2d" / "point_2d", ascending
    const std::string_view segment = std::string_view(reply_).substr(begin, end - begin);
    for (const std::string_view key : {kBoxKey, kPointKey})
      for (size_t at = segment.find(key); at != std::string_view::npos; at = segment.find(key, at + 1))
        keys.push_back(begin + at);
    std::sort(keys.begin(), keys.end());
    const auto mentions_key = [&keys](const Span& span) {
      const auto it = std::lower_bound(keys.begin(), keys.end(), span.begin);
      return it != keys.end() && *it < span.end;
    };

    std::vector<Span> parsed;  // disjoint, ascending
    std::vector<Span> failed;  // nested or disjoint, ascending by begin
    size_t covered_until = begin;
    for (const Span& span : spans) {
      if (span.begin < covered_until) continue;      // inside an object already read
      if (span.depth > kMaxParseDepth) continue;     // junk nesting: bounds the work to O(depth limit * size)
      if (!mentions_key(span)) continue;
      const json value = json::parse(strip_trailing_commas(reply_.substr(span.begin, span.end - span.begin)),
                                     nullptr, /*allow_exceptions=*/false);
      if (value.is_discarded() || !value.is_object()) {
        failed.push_back(span);  // the objects inside it are tried next
        continue;
      }
      collect(value, span.begin);
      parsed.push_back(span);
      covered_until = span.end;
    }

    // Every grounding key that no parsed object covers is reported once, at the innermost failed or unclosed
    // object around it. Keys in plain prose (outside any object) are not grounding output and say nothing.
    std::map<size_t, bool> reported;  // object offset -> truncated?
    size_t next_parsed = 0;
    size_t next_failed = 0;
    std::vector<Span> failed_chain;  // failed objects around the current key, outermost first
    for (const size_t at : keys) {
      while (next_parsed < parsed.size() && parsed[next_parsed].end <= at) ++next_parsed;
      if (next_parsed < parsed.size() && parsed[next_parsed].begin < at) continue;
      for (; next_failed < failed.size() && failed[next_failed].begin < at; ++next_failed) {
        while (!failed_chain.empty() && failed_chain.back().end <= failed[next_failed].begin) failed_chain.pop_back();
        failed_chain.push_back(failed[next_failed]);
      }
      while (!failed_chain.empty() && failed_chain.back().end <= at) failed_chain.pop_back();
      const auto unclosed_it = std::lower_bound(open.begin(), open.end(), at);
      const bool in_unclosed = unclosed_it != open.begin();
      // An unclosed brace never lies inside a closed object, so the later of the two is the innermost.
      if (!failed_chain.empty() && (!in_unclosed || failed_chain.back().begin > *(unclosed_it - 1)))
        reported.emplace(failed_chain.back().begin, false);
      else if (in_unclosed)
        reported.emplace(*(unclosed_it - 1), true);
    }
    for (const auto& [offset, truncated] : reported) {
      if (truncated)
        warn(offset, "grounding: the reply ends inside the object at byte " + std::to_string(offset) +
                         " (cut off by the token limit?); skipped");
      else
        warn(offset, "grounding: the object at byte " + std::to_string(offset) +
                         " mentions bbox_2d/point_2d but is not valid JSON; skipped");
    }
  }

  // Walks a parsed value: objects with bbox_2d / point_2d become items, anything else is searched inside.
  void collect(const json& value, size_t offset) {
    if (value.is_array()) {
      for (const json& element : value) collect(element, offset);
      return;
    }
    if (!value.is_object()) return;
    const bool has_box = value.contains(kBoxKey);
    const bool has_point = value.contains(kPointKey);
    if (!has_box && !has_point) {
      for (const auto& entry : value.items()) collect(entry.value(), offset);
      return;
    }
    std::string label;
    json extra = json::object();
    for (const auto& entry : value.items()) {
      if (entry.key() == kBoxKey || entry.key() == kPointKey) continue;
      if (entry.key() == "label" && entry.value().is_string()) {
        label = entry.value().get<std::string>();
        continue;
      }
      extra[entry.key()] = entry.value();
    }
    if (has_box) add_item(GroundingItem::Kind::Box, value.at(kBoxKey), label, extra, offset);
    if (has_point) add_item(GroundingItem::Kind::Point, value.at(kPointKey), label, extra, offset);
  }

  void add_item(GroundingItem::Kind kind, const json& coords, const std::string& label, const json& extra,
                size_t offset) {
    const bool box = kind == GroundingItem::Kind::Box;
    const char* key = box ? kBoxKey : kPointKey;
    const size_t expected = box ? 4 : 2;
    const std::string where = "grounding: the object at byte " + std::to_string(offset) + ": ";
    if (!coords.is_array()) {
      warn(offset, where + key + " is not a list; skipped");
      return;
    }
    if (coords.size() != expected) {
      warn(offset, where + key + " has " + std::to_string(coords.size()) + " elements, expected " +
                       std::to_string(expected) + "; skipped");
      return;
    }
    GroundingItem item;
    item.kind = kind;
    item.label = label;
    item.extra_json = dump_text(extra);
    for (const json& v : coords) {
      // Booleans are not numbers here; 1e999 parses to infinity and is rejected with NaN.
      if (!v.is_number() || !std::isfinite(v.get<double>())) {
        warn(offset, where + key + " holds " + dump_text(v) + ", not a finite number; skipped");
        return;
      }
      item.relative.push_back(v.get<double>());
    }
    bool out_of_grid = false;
    for (size_t i = 0; i < expected; ++i) {
      const double v = item.relative[i];
      if (v < 0.0 || v > kGridMax) out_of_grid = true;
      // x = even index, y = odd index. x * W / 1000 equals the cookbook's x / 1000 * W mathematically and is exact
      // for integer grids (x * W is an exact integer), so 388 on 1920 px gives 744.96, not 744.9599999999999.
      const double extent = (i % 2 == 0) ? width_ : height_;
      item.pixels.push_back(std::clamp(v, 0.0, kGridMax) * extent / kGridMax);
    }
    if (out_of_grid)
      warn(offset, where + key + " " + dump_text(coords) +
                       " leaves the 0..1000 relative grid (absolute pixels, as Qwen2.5-VL wrote them?); clamped");
    if (box && (item.relative[0] > item.relative[2] || item.relative[1] > item.relative[3]))
      warn(offset, where + "bbox_2d " + dump_text(coords) + " has x1 > x2 or y1 > y2; kept as written");
    result_.items.push_back(std::move(item));
  }

  const std::string& reply_;
  const double width_;
  const double height_;
  GroundingResult result_;
  std::vector<std::pair<size_t, std::string>> warnings_;  // (byte offset, message), sorted at the end
};

json number_json(double v) {
  // Integral values (the usual case for relative coordinates) print as integers: 12, not 12.0.
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9007199254740992.0)
    return json(static_cast<int64_t>(v));
  return json(v);
}

json numbers_json(const std::vector<double>& values) {
  json out = json::array();
  for (double v : values) out.push_back(number_json(v));
  return out;
}

}  // namespace

GroundingResult parse_grounding(const std::string& reply, int64_t image_width, int64_t image_height) {
  if (image_width <= 0 || image_height <= 0)
    throw_error("parse_grounding: image size ", image_width, "x", image_height, " must be positive");
  return Parser(reply, image_width, image_height).run();
}

std::string grounding_to_json(const GroundingResult& result) {
  json out = json::array();
  for (const GroundingItem& item : result.items) {
    const bool box = item.kind == GroundingItem::Kind::Box;
    json entry = json::object();
    entry["type"] = box ? "box" : "point";
    entry["label"] = item.label;
    entry[box ? "bbox_2d" : "point_2d"] = numbers_json(item.relative);
    entry[box ? "bbox_pixels" : "point_pixels"] = numbers_json(item.pixels);
    entry["image_index"] = item.image_index;
    json extra = json::parse(item.extra_json.empty() ? "{}" : item.extra_json, nullptr, false);
    entry["extra"] = extra.is_discarded() ? json(item.extra_json) : extra;  // caller-set non-JSON stays text
    out.push_back(std::move(entry));
  }
  return dump_text(out);
}

}  // namespace qwen3vl
