// Supervised fine-tuning datasets, read into chat messages plus the media files they name. Two item formats:
//
//   qwen-vl-finetune's ("conversations"; Qwen3-VL repository, qwen-vl-finetune/qwenvl/data/data_processor.py,
//   _build_messages):
//     {"image": "a.png" | ["a.png", ...], "video": "v.mp4" | [...],
//      "conversations": [{"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "A cat."}]}
//     Each <image> / <video> tag of a human turn takes the next file of its kind; the counts must match. The text
//     between tags is .strip()ped (Python's Unicode whitespace) and dropped when empty. "human" is the user; every
//     other "from" (also "system") becomes the assistant, as the official code maps it. Answers are text only: a tag
//     in an answer stays literal text.
//   OpenAI's ("messages"):
//     {"messages": [{"role": "system" | "user" | "assistant" | "tool",
//                    "content": "text" | [{"type": "text", "text": ...}, {"type": "image", "image": "a.png"},
//                                         {"type": "image_url", "image_url": {"url": "a.png"}},
//                                         {"type": "video", "video": "v.mp4"}]}]}
//     rendered by the chat template as given (system turns included).
//
// A record is one item, or a packed item: a JSON list of items (qwen-vl-finetune's "Packed Data Example"), which
// is trained as one sequence. Files: ".jsonl" holds one record per line (blank lines are skipped); anything else is
// one JSON list of records, as the official LazySupervisedDataset decides by the extension.
//
// Media paths resolve against the media root (default: the dataset file's folder). A path that is absolute or
// leaves the root (by "..") is an error unless the caller allows it; "file://" is accepted, other URLs are not.
// The check is lexical (a symbolic link inside the root may point elsewhere). Files must exist when read.
//
// Every error is one line "FILE:LINE: what", LINE being where the record starts (JSONL: its line; JSON list: the
// line of its opening bracket), with "packed[K]: " after it for item K (from 0) of a packed record.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/chat_template.h"

namespace qwen3vl {

// Where a record came from.
struct SftSource {
  std::string file;
  int64_t line = 0;    // 1-based line where the record starts
  int64_t record = 0;  // 0-based record index in the file
  std::string where() const { return file + ":" + std::to_string(line); }
};

// One conversation to train on.
struct SftItem {
  SftSource source;
  int64_t packed_index = -1;             // position inside a packed record; -1 for a record of its own
  std::vector<ChatMessage> messages;     // what the chat template renders (media parts without paths)
  std::vector<std::string> images;       // resolved paths, in the order of the image parts of `messages`
  std::vector<std::string> videos;       // resolved paths, likewise

  // "FILE:LINE" or "FILE:LINE: packed[K]": the prefix of every error about this item.
  std::string where() const;
};

// One line of a JSONL file (one element of a JSON list): one item, or several trained as one packed sequence.
struct SftRecord {
  SftSource source;
  bool packed = false;        // the record was a JSON list of items
  std::vector<SftItem> items;
};

struct SftReadOptions {
  std::string media_root;                 // empty: the dataset file's folder
  bool allow_paths_outside_root = false;  // absolute paths and paths that leave the root by ".."
};

// What happens to a record that cannot be used: Stop throws its error; Skip records the error line and goes on.
enum class BadSamplePolicy { Stop, Skip };

struct SftDataset {
  std::string path;
  std::vector<SftRecord> records;
  std::vector<std::string> skipped;  // one "FILE:LINE: what" per skipped record (Skip only), in file order
};

// Reads a dataset file. Errors that concern the whole file (unreadable, a JSON file that is not valid JSON or not a
// list) always throw; errors in one record follow `policy`.
SftDataset read_sft_dataset(const std::string& path, const SftReadOptions& options = {},
                            BadSamplePolicy policy = BadSamplePolicy::Stop);

// Parses one record (the text of a JSONL line or of one list element). `media_root` must be set. Throws Error
// "FILE:LINE: what" (source.where()). Exposed for tests and fuzzing.
SftRecord parse_sft_record(const std::string& json_text, const SftSource& source, const SftReadOptions& options);

// The byte offset of each element of the top-level JSON array in `json_text` (whitespace skipped), in order.
// Only meaningful for text that parses as a JSON array.
std::vector<size_t> top_level_element_offsets(const std::string& json_text);

// Python's str.strip(): removes leading and trailing characters for which str.isspace() is true (ASCII
// whitespace, U+001C..U+001F, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000).
// `text` must be valid UTF-8.
std::string python_strip(const std::string& text);

}  // namespace qwen3vl
