// Benchmark evaluation: JSONL items (image/video paths, question, optional choices, answer, optional category and
// metric), the prompt each item gets, reply scoring (MMMU-style multiple-choice letter extraction, exact match,
// ANLS, box IoU) and per-category accuracy. No model here: `qwen3vl eval` (and later the server) run the items.
//
// Item line (paths relative to the JSONL file unless absolute):
//   {"id": "7", "image": "a.png" | ["a.png", "b.png"], "video": "v.mp4" | [...], "question": "...",
//    "choices": ["red", "blue", ...], "answer": "B", "category": "color", "metric": "choice",
//    "fps": 2, "num_frames": 8}
// Only "question" and "answer" are required. "fps" / "num_frames" (optional, not both) set how the item's videos are
// sampled (default: the checkpoint's video_preprocessor_config.json, transformers' rule). "id" defaults to "line<N>". "metric" defaults to "choice" when there
// are choices, else "exact". Metrics:
//   choice  the letter extracted from the reply (extract_choice_letter) equals the answer letter (or, when the
//           answer is one of the choices' texts, that choice's letter)
//   exact   normalized reply == normalized answer (case, surrounding whitespace and a final period ignored)
//   anls    ANLS with threshold 0.5 (DocVQA): 1 - edit distance / longer length, 0 below 0.5; "answer" may be a list
//           of accepted answers (the best one counts)
//   iou     the first bbox_2d of the reply and of the answer overlap with IoU >= 0.5
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace qwen3vl {

struct EvalItem {
  std::string id;
  int64_t line = 0;                    // 1-based line number in the JSONL file
  std::vector<std::string> images;     // resolved paths, in prompt order
  std::vector<std::string> videos;     // resolved paths
  std::optional<double> video_fps;     // "fps": frames per second sampled from each video
  std::optional<int64_t> video_num_frames;  // "num_frames": exact frame count instead
  std::string question;
  std::vector<std::string> choices;
  std::vector<std::string> answers;    // one, or several accepted answers ("answer": [...])
  std::string category;                // "" when absent
  std::string metric;                  // choice | exact | anls | iou
};

// Parses one JSONL line. Paths are resolved against base_dir (the JSONL file's folder). Throws Error with a
// one-line reason (not valid JSON, "question" missing, unknown metric, ...); the caller names the line.
EvalItem parse_eval_item(const std::string& line, int64_t line_number, const std::string& base_dir);

// The user text of an item: the question, then for multiple choice one "X. text" line per choice and the
// instruction "Answer with the option's letter from the given choices directly." (MMMU's prompt).
std::string eval_prompt(const EvalItem& item);

// MMMU's parse_multi_choice_response: the letter (A, B, ...) the reply picks among `choice_count` options, or ""
// when none can be found. Looks for "(A)", then "A" standing alone (" A ", "A.", "A)", "A:"), then, for replies
// longer than five words, a choice's text; with several candidates the last one in the reply wins.
std::string extract_choice_letter(const std::string& reply, const std::vector<std::string>& choices);

// Lower case, collapse whitespace, trim, drop one final '.'.
std::string normalize_answer(const std::string& text);

// Levenshtein distance over bytes of the normalized strings, as in ANLS implementations.
int64_t edit_distance(const std::string& a, const std::string& b);
// ANLS of one reply against accepted answers: max over answers of (1 - NL) if NL < threshold else 0.
double anls(const std::string& reply, const std::vector<std::string>& answers, double threshold = 0.5);

// IoU of the first bbox_2d of each text (0 when either has none).
double bbox_iou(const std::string& reply, const std::string& answer);

struct EvalScore {
  double score = 0.0;       // in [0, 1]; 0/1 except anls
  std::string extracted;    // the letter for choice items, else ""
};
EvalScore score_reply(const EvalItem& item, const std::string& reply);

// Accuracy per category and overall (mean score over scored items; "" category shows as "all items").
struct EvalTally {
  struct Bucket {
    int64_t count = 0;
    double total = 0.0;
    double accuracy() const { return count ? total / count : 0.0; }
  };
  std::map<std::string, Bucket> categories;
  Bucket overall;
  int64_t failed = 0;        // items that could not be run (missing media, malformed line, ...)
  void add(const std::string& category, double score);
  // "category  items  accuracy" lines, then "overall" (and the failed count when > 0).
  std::string table() const;
};

}  // namespace qwen3vl
