#include "train/sft_data.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "tokenizer/unicode_text.h"

namespace qwen3vl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// What a user can do about a path outside the media root (the trainer's flags).
constexpr const char* kOutsideRootHint = "pass --media-root, or --allow-outside-media-root to allow such paths";

const char* json_type_name(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "a list";
    case json::value_t::object: return "an object";
    default: return "a number";
  }
}

// nlohmann's message without its "[json.exception.parse_error.101] " prefix.
std::string json_error_text(const json::exception& error) {
  std::string text = error.what();
  const size_t close = text.find("] ");
  if (text.rfind("[json.exception", 0) == 0 && close != std::string::npos) text.erase(0, close + 2);
  return text;
}

// The path components, without the empty last one a trailing separator leaves.
std::vector<fs::path> components(const fs::path& path) {
  std::vector<fs::path> parts(path.begin(), path.end());
  if (!parts.empty() && parts.back().empty()) parts.pop_back();
  return parts;
}

bool is_inside(const fs::path& root, const fs::path& path) {
  const std::vector<fs::path> root_parts = components(root), parts = components(path);
  if (parts.size() <= root_parts.size()) return false;
  for (size_t i = 0; i < root_parts.size(); ++i)
    if (parts[i] != root_parts[i]) return false;
  return true;
}

class MediaResolver {
 public:
  explicit MediaResolver(const SftReadOptions& options)
      : root_(fs::absolute(options.media_root).lexically_normal()), allow_outside_(options.allow_paths_outside_root) {}

  // The file a dataset names, checked against the root and for existence. Throws Error "what" (no location).
  std::string resolve(const std::string& kind, std::string name) const {
    if (name.rfind("file://", 0) == 0) name.erase(0, 7);
    if (name.empty()) throw_error("the ", kind, " path is empty");
    // A JSON "\u0000" would end the name the file system sees, after the root check saw the whole name.
    if (name.find('\0') != std::string::npos) throw_error(kind, " path contains a NUL character (\\u0000)");
    if (name.find("://") != std::string::npos || name.rfind("data:", 0) == 0)
      throw_error(kind, " '", name, "': only local files can be trained on (no URLs)");
    const fs::path given(name);
    const fs::path path = (given.is_absolute() ? given : root_ / given).lexically_normal();
    if (!allow_outside_) {
      if (given.is_absolute()) throw_error(kind, " '", name, "' is an absolute path; ", kOutsideRootHint);
      if (!is_inside(root_, path))
        throw_error(kind, " '", name, "' is outside the media root ", root_.string(), "; ", kOutsideRootHint);
    }
    std::error_code error;
    if (!fs::is_regular_file(path, error))
      throw_error(kind, " '", name, "' not found (", path.string(), fs::exists(path, error) ? " is not a file)" : ")");
    return path.string();
  }

 private:
  fs::path root_;
  bool allow_outside_;
};

// "image" / "video" of a conversations item: a string or a list of strings. Like `item.get("image") or []`, null,
// "" and [] mean none.
std::vector<std::string> file_list(const json& item, const char* key) {
  std::vector<std::string> files;
  const auto found = item.find(key);
  if (found == item.end() || found->is_null()) return files;
  if (found->is_string()) {
    if (!found->get_ref<const std::string&>().empty()) files.push_back(found->get<std::string>());
    return files;
  }
  if (!found->is_array()) throw_error("\"", key, "\": expected a path or a list of paths, got ", json_type_name(*found));
  for (size_t i = 0; i < found->size(); ++i) {
    if (!(*found)[i].is_string())
      throw_error("\"", key, "\"[", i, "]: expected a path, got ", json_type_name((*found)[i]));
    files.push_back((*found)[i].get<std::string>());
  }
  return files;
}

const std::string& string_field(const json& object, const char* key, const std::string& where) {
  const auto found = object.find(key);
  if (found == object.end()) throw_error(where, ".", key, ": missing");
  if (!found->is_string()) throw_error(where, ".", key, ": expected a string, got ", json_type_name(*found));
  return found->get_ref<const std::string&>();
}

ChatMessage text_list_message(const std::string& role) {
  ChatMessage message;
  message.role = role;
  message.content_is_string = false;  // _build_messages always builds a content list
  return message;
}

// A human turn: re.split(r"(<image>|<video>)", text); tags take the next file, other pieces are strip()ped and
// dropped when empty (data_processor.py, _build_messages).
void split_human_turn(const std::string& text, const std::string& where, const std::vector<std::string>& images,
                      const std::vector<std::string>& videos, size_t& next_image, size_t& next_video,
                      SftItem& item, ChatMessage& message) {
  static const std::string kImageTag = "<image>", kVideoTag = "<video>";
  auto add_text = [&](const std::string& piece) {
    std::string stripped = python_strip(piece);
    if (!stripped.empty()) message.content.push_back(ContentPart{ContentPart::Type::Text, std::move(stripped)});
  };
  size_t from = 0;
  for (;;) {
    const size_t image_at = text.find(kImageTag, from), video_at = text.find(kVideoTag, from);
    const size_t at = std::min(image_at, video_at);
    if (at == std::string::npos) break;
    add_text(text.substr(from, at - from));
    const bool image = at == image_at;
    if (image) {
      if (next_image == images.size())
        throw_error(where, ": more <image> tags than the ", images.size(), " image(s) the item lists");
      item.images.push_back(images[next_image++]);
    } else {
      if (next_video == videos.size())
        throw_error(where, ": more <video> tags than the ", videos.size(), " video(s) the item lists");
      item.videos.push_back(videos[next_video++]);
    }
    message.content.push_back(ContentPart{image ? ContentPart::Type::Image : ContentPart::Type::Video, ""});
    from = at + (image ? kImageTag : kVideoTag).size();
  }
  add_text(text.substr(from));
}

void parse_conversations(const json& object, const MediaResolver& media, SftItem& item) {
  std::vector<std::string> images = file_list(object, "image"), videos = file_list(object, "video");
  for (std::string& path : images) path = media.resolve("image", path);
  for (std::string& path : videos) path = media.resolve("video", path);
  const json& turns = object["conversations"];
  if (!turns.is_array()) throw_error("\"conversations\": expected a list of turns, got ", json_type_name(turns));
  if (turns.empty()) throw_error("\"conversations\" is empty");
  size_t next_image = 0, next_video = 0;
  for (size_t k = 0; k < turns.size(); ++k) {
    const std::string where = "conversations[" + std::to_string(k) + "]";
    const json& turn = turns[k];
    if (!turn.is_object()) throw_error(where, ": expected an object, got ", json_type_name(turn));
    const std::string& from = string_field(turn, "from", where);
    const std::string& value = string_field(turn, "value", where);
    if (from == "human") {
      ChatMessage message = text_list_message("user");
      split_human_turn(value, where, images, videos, next_image, next_video, item, message);
      item.messages.push_back(std::move(message));
    } else {  // `"user" if turn["from"] == "human" else "assistant"`
      ChatMessage message = text_list_message("assistant");
      message.content.push_back(ContentPart{ContentPart::Type::Text, value});
      item.messages.push_back(std::move(message));
    }
  }
  if (next_image < images.size())
    throw_error(images.size(), " image(s) listed but only ", next_image, " <image> tag(s) in the human turns");
  if (next_video < videos.size())
    throw_error(videos.size(), " video(s) listed but only ", next_video, " <video> tag(s) in the human turns");
}

// The path of an image_url / video_url field: a string or {"url": string}.
std::string url_field(const json& value, const std::string& where) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("url") && value["url"].is_string()) return value["url"].get<std::string>();
  throw_error(where, ": expected a path or {\"url\": path}");
}

// Collects the media paths of one content part, classified as parse_chat_messages (and the template) does:
// "image" / "image_url" key or type "image" is an image; "video" / "video_url" key or type is a video.
void collect_part_media(const json& part, const std::string& where, const MediaResolver& media, SftItem& item) {
  if (!part.is_object()) return;  // parse_chat_messages reports it
  const std::string type = part.contains("type") && part["type"].is_string() ? part["type"].get<std::string>() : "";
  if (part.contains("image") || part.contains("image_url") || type == "image") {
    std::string name;
    if (part.contains("image_url")) {
      name = url_field(part["image_url"], where + ".image_url");
    } else if (part.contains("image") && part["image"].is_string()) {
      name = part["image"].get<std::string>();
    } else {
      throw_error(where, ": an image part needs a path in \"image\" or \"image_url\"");
    }
    item.images.push_back(media.resolve("image", name));
  } else if (part.contains("video") || part.contains("video_url") || type == "video" || type == "video_url") {
    std::string name;
    if (part.contains("video_url")) {
      name = url_field(part["video_url"], where + ".video_url");
    } else if (part.contains("video") && part["video"].is_string()) {
      name = part["video"].get<std::string>();
    } else {
      throw_error(where, ": a video part needs a file path in \"video\" or \"video_url\" (frame lists are not "
                  "supported in training data)");
    }
    item.videos.push_back(media.resolve("video", name));
  }
}

void parse_messages(const json& object, const MediaResolver& media, SftItem& item) {
  const json& messages = object["messages"];
  if (!messages.is_array()) throw_error("\"messages\": expected a list of messages, got ", json_type_name(messages));
  if (messages.empty()) throw_error("\"messages\" is empty");
  for (size_t m = 0; m < messages.size(); ++m) {
    const std::string where = "messages[" + std::to_string(m) + "]";
    const json& message = messages[m];
    if (!message.is_object()) throw_error(where, ": expected an object, got ", json_type_name(message));
    const std::string& role = string_field(message, "role", where);
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      throw_error(where, ".role: \"", role, "\" is not system, user, assistant or tool");
    const auto content = message.find("content");
    if (content != message.end() && content->is_array())
      for (size_t p = 0; p < content->size(); ++p)
        collect_part_media((*content)[p], where + ".content[" + std::to_string(p) + "]", media, item);
  }
  item.messages = parse_chat_messages(messages.dump());
}

SftItem parse_item(const json& object, const SftSource& source, int64_t packed_index, const MediaResolver& media) {
  SftItem item;
  item.source = source;
  item.packed_index = packed_index;
  try {
    if (!object.is_object()) throw_error("expected an item object, got ", json_type_name(object));
    const bool conversations = object.contains("conversations"), messages = object.contains("messages");
    if (conversations && messages) throw_error("the item has both \"conversations\" and \"messages\"");
    if (conversations) {
      parse_conversations(object, media, item);
    } else if (messages) {
      parse_messages(object, media, item);
    } else {
      throw_error("the item has neither \"conversations\" (qwen-vl-finetune format) nor \"messages\" (OpenAI format)");
    }
  } catch (const Error& error) {
    throw_error(item.where(), ": ", error.what());
  }
  return item;
}

SftRecord parse_record_value(const json& value, const SftSource& source, const MediaResolver& media) {
  SftRecord record;
  record.source = source;
  if (value.is_array()) {
    if (value.empty()) throw_error(source.where(), ": the packed item list is empty");
    record.packed = true;
    for (size_t k = 0; k < value.size(); ++k)
      record.items.push_back(parse_item(value[k], source, static_cast<int64_t>(k), media));
  } else if (value.is_object()) {
    record.items.push_back(parse_item(value, source, -1, media));
  } else {
    throw_error(source.where(), ": expected an item object or a list of items, got ", json_type_name(value));
  }
  return record;
}

std::string read_text(const std::string& path) {
  std::error_code error;
  if (fs::is_directory(path, error)) throw_error(path, ": is a folder, not a dataset file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(path, ": cannot open the dataset file");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool is_blank(const std::string& line) { return line.find_first_not_of(" \t\r\n") == std::string::npos; }

// Parses one record and applies the policy to its error.
void add_record(SftDataset& dataset, BadSamplePolicy policy, const std::function<SftRecord()>& parse) {
  try {
    dataset.records.push_back(parse());
  } catch (const Error& error) {
    if (policy == BadSamplePolicy::Stop) throw;
    dataset.skipped.push_back(error.what());
  }
}

void read_jsonl(const std::string& text, const SftReadOptions& options, BadSamplePolicy policy, SftDataset& dataset) {
  const MediaResolver media(options);
  std::istringstream lines(text);
  std::string line;
  SftSource source;
  source.file = dataset.path;
  for (int64_t number = 1; std::getline(lines, line); ++number) {
    if (is_blank(line)) continue;
    source.line = number;
    add_record(dataset, policy, [&] {
      json value;
      try {
        value = json::parse(line);
      } catch (const json::exception& error) {
        throw_error(source.where(), ": not valid JSON: ", json_error_text(error));
      }
      return parse_record_value(value, source, media);
    });
    ++source.record;
  }
}

void read_json_list(const std::string& text, const SftReadOptions& options, BadSamplePolicy policy,
                    SftDataset& dataset) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& error) {
    const size_t byte = std::min<size_t>(error.byte, text.size());
    const int64_t line = 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(byte), '\n');
    throw_error(dataset.path, ":", line, ": not valid JSON: ", json_error_text(error));
  }
  if (!root.is_array())
    throw_error(dataset.path, ": expected a JSON list of items, got ", json_type_name(root),
                " (one item per line needs the .jsonl extension)");
  const std::vector<size_t> offsets = top_level_element_offsets(text);
  const MediaResolver media(options);
  SftSource source;
  source.file = dataset.path;
  size_t counted = 0;  // newlines before offsets[k], counted incrementally
  int64_t line = 1;
  for (size_t k = 0; k < root.size(); ++k) {
    const size_t offset = k < offsets.size() ? offsets[k] : text.size();
    line += std::count(text.begin() + static_cast<std::ptrdiff_t>(counted),
                       text.begin() + static_cast<std::ptrdiff_t>(offset), '\n');
    counted = offset;
    source.line = line;
    source.record = static_cast<int64_t>(k);
    add_record(dataset, policy, [&] { return parse_record_value(root[k], source, media); });
  }
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_python_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

}  // namespace

std::string SftItem::where() const {
  return packed_index < 0 ? source.where() : source.where() + ": packed[" + std::to_string(packed_index) + "]";
}

SftRecord parse_sft_record(const std::string& json_text, const SftSource& source, const SftReadOptions& options) {
  json value;
  try {
    value = json::parse(json_text);
  } catch (const json::exception& error) {
    throw_error(source.where(), ": not valid JSON: ", json_error_text(error));
  }
  return parse_record_value(value, source, MediaResolver(options));
}

SftDataset read_sft_dataset(const std::string& path, const SftReadOptions& options, BadSamplePolicy policy) {
  SftDataset dataset;
  dataset.path = path;
  const std::string text = read_text(path);
  SftReadOptions resolved = options;
  if (resolved.media_root.empty()) {
    resolved.media_root = fs::path(path).parent_path().string();
    if (resolved.media_root.empty()) resolved.media_root = ".";
  }
  if (ends_with(path, ".jsonl")) {
    read_jsonl(text, resolved, policy, dataset);
  } else {
    read_json_list(text, resolved, policy, dataset);
  }
  return dataset;
}

std::vector<size_t> top_level_element_offsets(const std::string& text) {
  std::vector<size_t> offsets;
  int depth = 0;
  bool in_string = false, escaped = false, expect_element = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    if (depth == 1 && expect_element && c != ']' && c != ',') {
      offsets.push_back(i);
      expect_element = false;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
      if (depth == 1) expect_element = c == '[';
    } else if (c == ']' || c == '}') {
      --depth;
    } else if (c == ',' && depth == 1) {
      expect_element = true;
    }
  }
  return offsets;
}

std::string python_strip(const std::string& text) {
  size_t begin = text.size(), end = 0;
  for (size_t pos = 0; pos < text.size();) {
    const size_t start = pos;
    if (!is_python_space(unicode::next_code_point(text, pos))) {
      begin = std::min(begin, start);
      end = pos;
    }
  }
  return begin < end ? text.substr(begin, end - begin) : std::string();
}

}  // namespace qwen3vl
