#include "chat_request.h"

#include <cmath>
#include <limits>
#include <set>
#include <sstream>
#include <nlohmann/json.hpp>

#include "api_error.h"
#include "core/error.h"

namespace qwen3vl {
namespace server {

using json = nlohmann::json;

namespace {

constexpr size_t kMaxStopStrings = 16;
constexpr size_t kMaxStopLength = 1024;
constexpr int64_t kMaxPixelsField = int64_t{1} << 34;
// Far above a real request: 16 videos of 768 frames given as image lists take about 50,000.
constexpr size_t kMaxJsonValues = size_t{1} << 18;

}  // namespace

const char* type_name(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::number_float: return "a number";
    default: return "an integer";
  }
}

const json* member(const json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

std::optional<bool> get_bool(const json& object, const char* key, const std::string& param) {
  const json* value = member(object, key);
  if (!value) return std::nullopt;
  if (!value->is_boolean()) bad_request(param, std::string("expected a boolean, got ") + type_name(*value));
  return value->get<bool>();
}

namespace {

std::optional<double> get_number(const json& object, const char* key, const std::string& param, double lo,
                                 double hi) {
  const json* value = member(object, key);
  if (!value) return std::nullopt;
  if (!value->is_number()) bad_request(param, std::string("expected a number, got ") + type_name(*value));
  const double number = value->get<double>();
  if (!std::isfinite(number) || number < lo || number > hi) {
    std::ostringstream range;
    range << "must be between " << lo << " and " << hi << ", got " << value->dump();
    bad_request(param, range.str());
  }
  return number;
}

std::optional<int64_t> get_integer(const json& object, const char* key, const std::string& param, int64_t lo,
                                   int64_t hi) {
  const json* value = member(object, key);
  if (!value) return std::nullopt;
  int64_t number = 0;
  if (value->is_number_integer()) {
    if (value->is_number_unsigned() && value->get<uint64_t>() > static_cast<uint64_t>(hi))
      bad_request(param, "must be at most " + std::to_string(hi) + ", got " + value->dump());
    number = value->get<int64_t>();
  } else if (value->is_number_float() && std::floor(value->get<double>()) == value->get<double>() &&
             std::fabs(value->get<double>()) < 9e15) {
    number = static_cast<int64_t>(value->get<double>());  // 5.0 is accepted as 5, as Python clients may send it
  } else {
    bad_request(param, std::string("expected an integer, got ") + type_name(*value));
  }
  if (number < lo || number > hi)
    bad_request(param, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
                           std::to_string(number));
  return number;
}

std::string get_string(const json& value, const std::string& param) {
  if (!value.is_string()) bad_request(param, std::string("expected a string, got ") + type_name(value));
  return value.get<std::string>();
}

void read_pixel_budget(const json& object, const std::string& prefix, std::optional<int64_t>& min_pixels,
                       std::optional<int64_t>& max_pixels) {
  if (auto v = get_integer(object, "min_pixels", prefix + "min_pixels", 1, kMaxPixelsField)) min_pixels = v;
  if (auto v = get_integer(object, "max_pixels", prefix + "max_pixels", 1, kMaxPixelsField)) max_pixels = v;
  if (min_pixels && max_pixels && *min_pixels > *max_pixels)
    bad_request(prefix + "min_pixels", "min_pixels (" + std::to_string(*min_pixels) + ") exceeds max_pixels (" +
                                           std::to_string(*max_pixels) + ")");
}

// "image_url": {"url": ..., "detail": ...} or "image_url": "..." (and "video_url" alike).
void read_url_object(const json& value, const std::string& where, MediaPart& part) {
  if (value.is_string()) {
    part.url = value.get<std::string>();
  } else if (value.is_object()) {
    const json* url = member(value, "url");
    if (!url) bad_request(where + ".url", "missing");
    part.url = get_string(*url, where + ".url");
    if (const json* detail = member(value, "detail")) {
      part.detail = get_string(*detail, where + ".detail");
      if (part.detail != "auto" && part.detail != "low" && part.detail != "high")
        bad_request(where + ".detail", "expected \"auto\", \"low\" or \"high\", got \"" + part.detail + "\"");
    }
    read_pixel_budget(value, where + ".", part.min_pixels, part.max_pixels);
  } else {
    bad_request(where, std::string("expected an object with a \"url\" or a string, got ") + type_name(value));
  }
  if (part.url.empty()) bad_request(where + ".url", "is empty");
}

void read_frames(const json& list, const json& part_json, const std::string& where, MediaPart& part) {
  if (list.empty()) bad_request(where, "a video frame list is empty");
  std::vector<std::optional<double>> stamps(list.size());
  if (const json* timestamps = member(part_json, "timestamps")) {
    if (!timestamps->is_array() || timestamps->size() != list.size())
      bad_request(where + ".timestamps", "expected an array of one number per frame");
    for (size_t i = 0; i < list.size(); ++i) {
      if (!(*timestamps)[i].is_number() || !std::isfinite((*timestamps)[i].get<double>()) ||
          (*timestamps)[i].get<double>() < 0)
        bad_request(where + ".timestamps[" + std::to_string(i) + "]", "expected a non-negative number");
      stamps[i] = (*timestamps)[i].get<double>();
    }
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    MediaPart::Frame frame;
    if (list[i].is_string()) {
      frame.url = list[i].get<std::string>();
    } else if (list[i].is_object()) {  // {"url" | "image": ..., "timestamp": seconds}
      const json* url = member(list[i], "url");
      if (!url) url = member(list[i], "image");
      if (!url) bad_request(at, "a frame needs \"url\" or \"image\"");
      frame.url = get_string(*url, at + ".url");
      if (auto t = get_number(list[i], "timestamp", at + ".timestamp", 0.0, 1e7)) frame.timestamp = t;
    } else {
      bad_request(at, std::string("expected a frame (a string or an object), got ") + type_name(list[i]));
    }
    if (frame.url.empty()) bad_request(at, "the frame source is empty");
    if (stamps[i]) frame.timestamp = stamps[i];
    part.frames.push_back(std::move(frame));
  }
}

// Mirrors parse_chat_messages' classification: "image" / "image_url" key or type "image" -> image; "video" /
// "video_url" key or type -> video; other parts carry no media.
void collect_media(const json& part_json, const std::string& where, std::vector<MediaPart>& media) {
  if (!part_json.is_object()) return;  // parse_chat_messages reports it
  const json* type = member(part_json, "type");
  const std::string type_name_text = type && type->is_string() ? type->get<std::string>() : "";
  MediaPart part;
  part.where = where;
  if (part_json.contains("image") || part_json.contains("image_url") || type_name_text == "image" ||
      type_name_text == "image_url") {
    part.kind = MediaPart::Kind::Image;
    if (const json* url = member(part_json, "image_url")) {
      read_url_object(*url, where + ".image_url", part);
    } else if (const json* image = member(part_json, "image")) {
      read_url_object(*image, where + ".image", part);
    } else {
      bad_request(where, "an image part needs \"image_url\" (or \"image\")");
    }
  } else if (part_json.contains("video") || part_json.contains("video_url") || type_name_text == "video" ||
             type_name_text == "video_url") {
    part.kind = MediaPart::Kind::Video;
    if (const json* url = member(part_json, "video_url")) {
      read_url_object(*url, where + ".video_url", part);
    } else if (const json* video = member(part_json, "video")) {
      if (video->is_array()) {
        read_frames(*video, part_json, where + ".video", part);
      } else if (video->is_object() && video->contains("frames")) {
        const json& frames = (*video)["frames"];
        if (!frames.is_array()) bad_request(where + ".video.frames", "expected an array");
        read_frames(frames, *video, where + ".video.frames", part);
      } else {
        read_url_object(*video, where + ".video", part);
      }
    } else {
      bad_request(where, "a video part needs \"video_url\" or \"video\"");
    }
    if (auto fps = get_number(part_json, "fps", where + ".fps", 1e-3, 240.0)) part.fps = fps;
    if (auto fps = get_number(part_json, "sample_fps", where + ".sample_fps", 1e-3, 240.0)) part.fps = fps;
    part.num_frames = get_integer(part_json, "nframes", where + ".nframes", 1, 100000);
    part.min_frames = get_integer(part_json, "min_frames", where + ".min_frames", 1, 100000);
    part.max_frames = get_integer(part_json, "max_frames", where + ".max_frames", 1, 100000);
    part.total_pixels = get_integer(part_json, "total_pixels", where + ".total_pixels", 1, kMaxPixelsField);
    part.start_seconds = get_number(part_json, "video_start", where + ".video_start", 0.0, 1e7);
    part.end_seconds = get_number(part_json, "video_end", where + ".video_end", 0.0, 1e7);
    if (part.start_seconds && part.end_seconds && *part.end_seconds <= *part.start_seconds)
      bad_request(where + ".video_end", "must be after video_start");
  } else {
    return;
  }
  read_pixel_budget(part_json, where + ".", part.min_pixels, part.max_pixels);
  media.push_back(std::move(part));
}

// Takes `messages` apart: its text moves into request.messages and the JSON is left null, so that a large body is
// not held in one more copy than needed at once.
void read_messages(json& messages, ChatRequest& request) {
  if (!messages.is_array()) bad_request("messages", std::string("expected an array, got ") + type_name(messages));
  if (messages.empty()) bad_request("messages", "must not be empty");
  for (size_t m = 0; m < messages.size(); ++m) {
    const std::string where = "messages[" + std::to_string(m) + "]";
    const json& message = messages[m];
    if (!message.is_object()) bad_request(where, std::string("expected an object, got ") + type_name(message));
    const json* role = member(message, "role");
    if (!role) bad_request(where + ".role", "missing");
    const std::string role_text = get_string(*role, where + ".role");
    if (role_text != "system" && role_text != "user" && role_text != "assistant" && role_text != "tool" &&
        role_text != "developer")
      bad_request(where + ".role", "unknown role \"" + role_text + "\"");
    const json* content = member(message, "content");
    if (content && !content->is_string() && !content->is_array())
      bad_request(where + ".content", std::string("expected a string or an array of parts, got ") +
                                          type_name(*content));
    if (content && content->is_array())
      for (size_t p = 0; p < content->size(); ++p)
        collect_media((*content)[p], where + ".content[" + std::to_string(p) + "]", request.media);
  }
  // The template-facing structure; the engine's parser reports the remaining shape errors by path.
  for (json& message : messages)  // OpenAI's "developer" role is the system role of older models
    if (message["role"] == "developer") message["role"] = "system";
  std::string for_template = messages.dump();
  messages = nullptr;
  try {
    request.messages = parse_chat_messages(for_template);
  } catch (const Error& error) {
    throw ApiError(400, error.what(), "messages");
  }
}

void read_stop(const json& body, ChatRequest& request) {
  const json* stop = member(body, "stop");
  if (!stop) return;
  std::vector<std::string> list;
  if (stop->is_string()) {
    list.push_back(stop->get<std::string>());
  } else if (stop->is_array()) {
    if (stop->size() > kMaxStopStrings)
      bad_request("stop", "at most " + std::to_string(kMaxStopStrings) + " stop strings");
    for (size_t i = 0; i < stop->size(); ++i) list.push_back(get_string((*stop)[i], "stop[" + std::to_string(i) + "]"));
  } else {
    bad_request("stop", std::string("expected a string or an array of strings, got ") + type_name(*stop));
  }
  for (const std::string& s : list) {
    if (s.empty()) bad_request("stop", "a stop string is empty");
    if (s.size() > kMaxStopLength) bad_request("stop", "a stop string is longer than 1024 bytes");
  }
  request.stop = std::move(list);
}

// One pass over the text before parsing, which refuses JSON nested deeper than `max_depth` (printing and walking
// nested values recurses) or with more than `max_values` values (each value costs a parsed node of about 100 bytes,
// twice: nlohmann's and the chat template's; a 5 MB object with 10^6 keys would take hundreds of MB). Values are
// counted from commas and brackets, an upper bound for the values and keys.
void check_json_shape(const std::string& body, int max_depth, size_t max_values) {
  int depth = 0;
  size_t values = 1;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++values;
      if (++depth > max_depth)
        throw ApiError(400, "the body nests JSON deeper than " + std::to_string(max_depth) + " levels", "",
                       "invalid_json");
    } else if (c == ']' || c == '}') {
      --depth;
    } else if (c == ',') {
      ++values;
    }
  }
  if (values > max_values)
    throw ApiError(400, "the body has more than " + std::to_string(max_values) + " JSON values", "",
                   "too_many_json_values");
}

}  // namespace

std::vector<LoraChoice> parse_lora_choices(const json& value, const std::string& param) {
  if (!value.is_array())
    bad_request(param, std::string("expected an array of {\"id\", \"scale\"} objects, got ") + type_name(value));
  std::vector<LoraChoice> choices;
  std::set<int64_t> seen;
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string where = param + "[" + std::to_string(i) + "]";
    const json& entry = value[i];
    if (!entry.is_object()) bad_request(where, std::string("expected an object, got ") + type_name(entry));
    const std::optional<int64_t> id = get_integer(entry, "id", where + ".id", 0, 1 << 30);
    if (!id) bad_request(where + ".id", "missing");
    if (!seen.insert(*id).second) bad_request(where + ".id", "adapter " + std::to_string(*id) + " is listed twice");
    const json* scale = member(entry, "scale");
    if (!scale) bad_request(where + ".scale", "missing");
    if (!scale->is_number() || !std::isfinite(scale->get<double>()))
      bad_request(where + ".scale", std::string("expected a finite number, got ") +
                                        (scale->is_number() ? scale->dump() : type_name(*scale)));
    choices.push_back({*id, scale->get<double>()});
  }
  return choices;
}

json parse_json_body(const std::string& body) {
  check_json_shape(body, 64, kMaxJsonValues);
  try {
    return json::parse(body);
  } catch (const json::exception& error) {
    throw ApiError(400, std::string("the body is not valid JSON: ") + error.what(), "", "invalid_json");
  }
}

ChatRequest parse_chat_request(const std::string& body) {
  json root = parse_json_body(body);
  if (!root.is_object()) bad_request("", std::string("the body must be a JSON object, got ") + type_name(root));
  return chat_request_from_json(root);
}

ChatRequest chat_request_from_json(json& root) {
  ChatRequest request;
  if (const json* model = member(root, "model")) request.model = get_string(*model, "model");
  if (!member(root, "messages")) bad_request("messages", "missing");
  read_messages(root["messages"], request);

  request.stream = get_bool(root, "stream", "stream").value_or(false);
  if (const json* options = member(root, "stream_options")) {
    if (!options->is_object()) bad_request("stream_options", "expected an object");
    request.include_usage = get_bool(*options, "include_usage", "stream_options.include_usage").value_or(false);
  }
  constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();
  request.max_tokens = get_integer(root, "max_tokens", "max_tokens", 1, kMaxInt);
  if (auto v = get_integer(root, "max_completion_tokens", "max_completion_tokens", 1, kMaxInt)) request.max_tokens = v;
  request.temperature = get_number(root, "temperature", "temperature", 0.0, 2.0);
  request.top_p = get_number(root, "top_p", "top_p", 1e-9, 1.0);
  request.min_p = get_number(root, "min_p", "min_p", 0.0, 1.0);
  request.repetition_penalty = get_number(root, "repetition_penalty", "repetition_penalty", 1e-3, 10.0);
  request.top_k = get_integer(root, "top_k", "top_k", -1, 1 << 30);
  if (auto seed = get_integer(root, "seed", "seed", std::numeric_limits<int64_t>::min(), kMaxInt))
    request.seed = static_cast<uint64_t>(*seed);
  request.presence_penalty = get_number(root, "presence_penalty", "presence_penalty", -2.0, 2.0).value_or(0.0);
  request.frequency_penalty = get_number(root, "frequency_penalty", "frequency_penalty", -2.0, 2.0).value_or(0.0);
  read_stop(root, request);

  if (auto n = get_integer(root, "n", "n", 1, 128); n && *n != 1)
    bad_request("n", "only n = 1 is supported", "unsupported_parameter");
  if (get_bool(root, "logprobs", "logprobs").value_or(false))
    bad_request("logprobs", "logprobs are not supported", "unsupported_parameter");
  if (const json* tools = member(root, "tools"); tools && !(tools->is_array() && tools->empty()))
    bad_request("tools", "tool calling is not supported by this server yet", "unsupported_parameter");
  if (const json* format = member(root, "response_format")) {
    const json* type = format->is_object() ? member(*format, "type") : nullptr;
    if (!type || !type->is_string() || type->get<std::string>() != "text")
      bad_request("response_format", "only {\"type\": \"text\"} is supported", "unsupported_parameter");
  }

  read_pixel_budget(root, "", request.min_pixels, request.max_pixels);
  if (const json* kwargs = member(root, "mm_processor_kwargs")) {  // vLLM's spelling of the same budget
    if (!kwargs->is_object()) bad_request("mm_processor_kwargs", "expected an object");
    read_pixel_budget(*kwargs, "mm_processor_kwargs.", request.min_pixels, request.max_pixels);
  }
  request.max_visual_tokens = get_integer(root, "max_visual_tokens", "max_visual_tokens", 1, 1 << 24);
  if (const json* lora = member(root, "lora")) request.lora = parse_lora_choices(*lora, "lora");
  return request;
}

}  // namespace server
}  // namespace qwen3vl
