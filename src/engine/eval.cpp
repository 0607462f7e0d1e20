#include "engine/eval.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "engine/grounding.h"

namespace qwen3vl {

namespace {

using json = nlohmann::json;

std::vector<std::string> string_or_list(const json& v, const char* key) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    for (const json& e : v) {
      if (!e.is_string()) throw_error("\"", key, "\" must be a string or a list of strings");
      out.push_back(e.get<std::string>());
    }
  } else {
    throw_error("\"", key, "\" must be a string or a list of strings");
  }
  return out;
}

std::string resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return base_dir + "/" + path;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string letter(size_t i) { return std::string(1, static_cast<char>('A' + i)); }

}  // namespace

EvalItem parse_eval_item(const std::string& line, int64_t line_number, const std::string& base_dir) {
  json j;
  try {
    j = json::parse(line);
  } catch (const json::exception&) {
    throw_error("not valid JSON");
  }
  if (!j.is_object()) throw_error("not a JSON object");
  EvalItem item;
  item.line = line_number;
  if (j.contains("id")) {
    const json& id = j["id"];
    if (id.is_string()) item.id = id.get<std::string>();
    else if (id.is_number_integer()) item.id = std::to_string(id.get<int64_t>());
    else throw_error("\"id\" must be a string or an integer");
  } else {
    item.id = "line" + std::to_string(line_number);
  }
  if (!j.contains("question") || !j["question"].is_string()) throw_error("\"question\" (a string) is missing");
  item.question = j["question"].get<std::string>();
  if (!j.contains("answer")) throw_error("\"answer\" is missing");
  if (j["answer"].is_number_integer()) item.answers.push_back(std::to_string(j["answer"].get<int64_t>()));
  else item.answers = string_or_list(j["answer"], "answer");
  if (item.answers.empty()) throw_error("\"answer\" is an empty list");
  for (const char* key : {"image", "images"}) {
    if (!j.contains(key)) continue;
    for (const std::string& p : string_or_list(j[key], key)) item.images.push_back(resolve(base_dir, p));
  }
  for (const char* key : {"video", "videos"}) {
    if (!j.contains(key)) continue;
    for (const std::string& p : string_or_list(j[key], key)) item.videos.push_back(resolve(base_dir, p));
  }
  if (j.contains("fps") && !j["fps"].is_null()) {
    if (!j["fps"].is_number() || j["fps"].get<double>() <= 0) throw_error("\"fps\" must be a positive number");
    item.video_fps = j["fps"].get<double>();
  }
  if (j.contains("num_frames") && !j["num_frames"].is_null()) {
    if (!j["num_frames"].is_number_integer() || j["num_frames"].get<int64_t>() <= 0)
      throw_error("\"num_frames\" must be a positive integer");
    item.video_num_frames = j["num_frames"].get<int64_t>();
  }
  if (item.video_fps && item.video_num_frames) throw_error("\"fps\" and \"num_frames\" exclude each other");
  if ((item.video_fps || item.video_num_frames) && item.videos.empty())
    throw_error("\"fps\" / \"num_frames\" without a \"video\"");
  if (j.contains("choices") && !j["choices"].is_null()) {
    item.choices = string_or_list(j["choices"], "choices");
    if (item.choices.size() > 26) throw_error("more than 26 choices");
  }
  if (j.contains("category")) {
    if (!j["category"].is_string()) throw_error("\"category\" must be a string");
    item.category = j["category"].get<std::string>();
  }
  if (j.contains("metric")) {
    if (!j["metric"].is_string()) throw_error("\"metric\" must be a string");
    item.metric = j["metric"].get<std::string>();
    if (item.metric != "choice" && item.metric != "exact" && item.metric != "anls" && item.metric != "iou")
      throw_error("unknown metric \"", item.metric, "\" (choice, exact, anls or iou)");
  } else {
    item.metric = item.choices.empty() ? "exact" : "choice";
  }
  if (item.metric == "choice" && item.choices.empty()) throw_error("metric \"choice\" needs \"choices\"");
  return item;
}

std::string eval_prompt(const EvalItem& item) {
  if (item.choices.empty()) return item.question;
  std::string out = item.question;
  for (size_t i = 0; i < item.choices.size(); ++i) out += "\n" + letter(i) + ". " + item.choices[i];
  out += "\nAnswer with the option's letter from the given choices directly.";
  return out;
}

std::string extract_choice_letter(const std::string& reply, const std::vector<std::string>& choices) {
  // MMMU: strip these characters from both ends, pad with spaces so " A " also matches at the ends.
  std::string r = reply;
  const std::string strip_chars = ",.!?;:'";
  auto is_strip = [&](char c) { return strip_chars.find(c) != std::string::npos; };
  // Python's str.strip(char) for each char in turn; whitespace is kept (MMMU does the same).
  for (char c : strip_chars) {
    size_t b = 0, e = r.size();
    while (b < e && r[b] == c) ++b;
    while (e > b && r[e - 1] == c) --e;
    r = r.substr(b, e - b);
  }
  (void)is_strip;
  const std::string response = " " + r + " ";
  const size_t n = choices.size();
  struct Candidate {
    std::string letter;
    size_t pos;
  };
  std::vector<Candidate> found;
  auto last_pos = [&](const std::string& needle) { return response.rfind(needle); };
  for (size_t i = 0; i < n; ++i) {  // "(A)"
    const size_t p = last_pos("(" + letter(i) + ")");
    if (p != std::string::npos) found.push_back({letter(i), p});
  }
  if (found.empty()) {  // " A "
    for (size_t i = 0; i < n; ++i) {
      const size_t p = last_pos(" " + letter(i) + " ");
      if (p != std::string::npos) found.push_back({letter(i), p});
    }
  }
  if (found.empty()) {  // beyond MMMU: "A." "A)" "A:" "A," after a space, as in "B. blue" or "Answer: C, since"
    for (size_t i = 0; i < n; ++i) {
      size_t best = std::string::npos;
      for (const char* tail : {".", ")", ":", ","}) {
        const size_t p = last_pos(" " + letter(i) + tail);
        if (p != std::string::npos && (best == std::string::npos || p > best)) best = p;
      }
      if (best != std::string::npos) found.push_back({letter(i), best});
    }
  }
  if (found.empty()) {  // the choice's text, only in longer replies (MMMU: more than 5 words)
    std::istringstream words(response);
    std::string w;
    size_t count = 0;
    while (words >> w) ++count;
    if (count > 5) {
      const std::string lr = lower(response);
      for (size_t i = 0; i < n; ++i) {
        if (choices[i].empty()) continue;
        const size_t p = lr.rfind(lower(choices[i]));
        if (p != std::string::npos) found.push_back({letter(i), p});
      }
    }
  }
  if (found.empty()) return "";
  // the last one in the reply wins (first in choice order on equal positions, as numpy's argmax)
  size_t best = 0;
  for (size_t k = 1; k < found.size(); ++k)
    if (found[k].pos > found[best].pos) best = k;
  return found[best].letter;
}

std::string normalize_answer(const std::string& text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

int64_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<int64_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int64_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

double anls(const std::string& reply, const std::vector<std::string>& answers, double threshold) {
  const std::string r = normalize_answer(reply);
  double best = 0.0;
  for (const std::string& answer : answers) {
    const std::string a = normalize_answer(answer);
    const size_t longest = std::max(a.size(), r.size());
    const double nl = longest == 0 ? 0.0 : static_cast<double>(edit_distance(a, r)) / static_cast<double>(longest);
    best = std::max(best, nl < threshold ? 1.0 - nl : 0.0);
  }
  return best;
}

double bbox_iou(const std::string& reply, const std::string& answer) {
  auto first_box = [](const std::string& text, std::vector<double>& box) {
    const GroundingResult g = parse_grounding(text, 1000, 1000);
    for (const GroundingItem& it : g.items)
      if (it.kind == GroundingItem::Kind::Box && it.relative.size() == 4) {
        box = it.relative;
        return true;
      }
    return false;
  };
  std::vector<double> a, b;
  if (!first_box(reply, a) || !first_box(answer, b)) return 0.0;
  auto area = [](const std::vector<double>& v) {
    return std::max(0.0, v[2] - v[0]) * std::max(0.0, v[3] - v[1]);
  };
  const double iw = std::max(0.0, std::min(a[2], b[2]) - std::max(a[0], b[0]));
  const double ih = std::max(0.0, std::min(a[3], b[3]) - std::max(a[1], b[1]));
  const double inter = iw * ih, uni = area(a) + area(b) - inter;
  return uni > 0.0 ? inter / uni : 0.0;
}

EvalScore score_reply(const EvalItem& item, const std::string& reply) {
  EvalScore s;
  if (item.metric == "choice") {
    s.extracted = extract_choice_letter(reply, item.choices);
    for (const std::string& answer : item.answers) {
      std::string want = answer;
      if (want.size() != 1 || want[0] < 'A' || want[0] >= 'A' + static_cast<int>(item.choices.size())) {
        for (size_t i = 0; i < item.choices.size(); ++i)  // the answer names a choice's text
          if (normalize_answer(item.choices[i]) == normalize_answer(answer)) want = letter(i);
      }
      if (!s.extracted.empty() && s.extracted == want) s.score = 1.0;
    }
  } else if (item.metric == "exact") {
    const std::string r = normalize_answer(reply);
    for (const std::string& answer : item.answers)
      if (normalize_answer(answer) == r) s.score = 1.0;
  } else if (item.metric == "anls") {
    s.score = anls(reply, item.answers);
  } else if (item.metric == "iou") {
    for (const std::string& answer : item.answers)
      if (bbox_iou(reply, answer) >= 0.5) s.score = 1.0;
  }
  return s;
}

void EvalTally::add(const std::string& category, double score) {
  Bucket& b = categories[category];
  ++b.count;
  b.total += score;
  ++overall.count;
  overall.total += score;
}

std::string EvalTally::table() const {
  std::string out;
  char buf[256];
  size_t width = 8;
  for (const auto& [name, b] : categories) width = std::max(width, name.empty() ? size_t(9) : name.size());
  std::snprintf(buf, sizeof buf, "%-*s %7s %9s\n", static_cast<int>(width), "category", "items", "accuracy");
  out += buf;
  for (const auto& [name, b] : categories) {
    std::snprintf(buf, sizeof buf, "%-*s %7lld %8.2f%%\n", static_cast<int>(width),
                  name.empty() ? "(none)" : name.c_str(), static_cast<long long>(b.count), 100.0 * b.accuracy());
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "%-*s %7lld %8.2f%%\n", static_cast<int>(width), "overall",
                static_cast<long long>(overall.count), 100.0 * overall.accuracy());
  out += buf;
  if (failed > 0) {
    std::snprintf(buf, sizeof buf, "%lld item(s) could not be run and are not scored\n",
                  static_cast<long long>(failed));
    out += buf;
  }
  return out;
}

}  // namespace qwen3vl
