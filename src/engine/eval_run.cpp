#include "engine/eval_run.h"

#include <sys/stat.h>

#include <fstream>
#include <set>

#include "core/error.h"
#include "engine/generate.h"
#include "engine/prompt.h"
#include "engine/video_prompt.h"
#include "vision/image_decode.h"

namespace qwen3vl {

namespace {

std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Runs `load` on a media file; an error whose message does not start with the path gets it as a prefix, so every
// per-item message names the file at fault.
template <typename Load>
void naming_the_file(const std::string& path, Load&& load) {
  try {
    load();
  } catch (const Error& error) {
    const std::string message = error.what();
    if (message.rfind(path, 0) == 0) throw;
    throw_error(path, ": ", message);
  }
}

}  // namespace

std::vector<EvalEntry> read_eval_entries(const std::string& path, int64_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(path, ": cannot open the benchmark file");
  const std::string base = dir_of(path);
  std::vector<EvalEntry> entries;
  std::set<std::string> ids;
  std::string line;
  int64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    EvalEntry entry;
    entry.line = line_number;
    try {
      entry.item = parse_eval_item(line, line_number, base);
      if (!ids.insert(entry.item.id).second) throw_error("duplicate id \"", entry.item.id, "\"");
    } catch (const Error& error) {
      entry.ok = false;
      entry.error = error.what();
    }
    entries.push_back(std::move(entry));
    if (limit > 0 && static_cast<int64_t>(entries.size()) >= limit) break;
  }
  return entries;
}

EvalRunner::EvalRunner(const LoadedModel& model, EvalRunOptions options) : model_(model), options_(std::move(options)) {
  for (int64_t id : model_.generation.eos_token_id) stop_ids_.push_back(static_cast<int32_t>(id));
}

EvalPrediction EvalRunner::run(const EvalItem& item) {
  GenerationRequest request;
  for (const std::string& path : item.images) {
    if (!file_exists(path)) throw_error(path, ": image file not found");
    naming_the_file(path, [&] {
      request.images.push_back(preprocess_image(decode_image_file(path), model_.image_processor, options_.budget));
    });
  }
  // Videos go through the same path as `qwen3vl run --video`: transformers' frame sampling (the checkpoint's fps
  // unless the item sets "fps" / "num_frames"), the budget over all frames, <t.t seconds> stamps per pair.
  for (const std::string& path : item.videos) {
    if (!file_exists(path)) throw_error(path, ": video file not found");
    if (!video_config_) video_config_ = load_video_processor_config(model_.dir);
    VideoOptions video_options;
    video_options.sampling.fps = item.video_fps;
    video_options.sampling.num_frames = item.video_num_frames;
    naming_the_file(path, [&] { request.videos.push_back(preprocess_video_file(path, *video_config_, video_options)); });
  }
  const int64_t merge = model_.config.vision_config.spatial_merge_size;
  std::string chat;
  if (request.videos.empty()) {
    chat = render_chat(model_, single_turn(options_.system, eval_prompt(item), request.images.size()));
  } else {  // the item's images first, then its videos
    std::vector<ContentPart::Type> media(request.images.size(), ContentPart::Type::Image);
    media.insert(media.end(), request.videos.size(), ContentPart::Type::Video);
    chat = render_chat(model_, single_turn_with_media(options_.system, eval_prompt(item), media));
  }
  request.prompt_ids =
      encode_text(model_, expand_video_placeholders(expand_image_placeholders(chat, request.images, merge),
                                                    request.videos, merge,
                                                    model_.config.vision_config.temporal_patch_size));
  request.max_new_tokens = options_.max_new_tokens;
  request.adapters = options_.adapters;
  request.sampling = SamplingParams{};  // greedy, no penalties
  request.stop_token_ids = stop_ids_;
  GenerationResult result = generate(model_, request);
  EvalPrediction prediction;
  prediction.score = score_reply(item, result.text);
  prediction.text = std::move(result.text);
  prediction.tokens = std::move(result.tokens);
  return prediction;
}

void run_eval(EvalRunner& runner, const std::vector<EvalEntry>& entries, EvalTally& tally,
              const EvalItemCallback& on_item) {
  for (const EvalEntry& entry : entries) {
    if (!entry.ok) {
      ++tally.failed;
      if (on_item) on_item(entry, nullptr, entry.error);
      continue;
    }
    try {
      const EvalPrediction prediction = runner.run(entry.item);
      tally.add(entry.item.category, prediction.score.score);
      if (on_item) on_item(entry, &prediction, "");
    } catch (const Error& error) {
      ++tally.failed;
      if (on_item) on_item(entry, nullptr, error.what());
    }
  }
}

nlohmann::json prediction_record(const EvalItem& item, const EvalPrediction& prediction) {
  nlohmann::json record;
  record["id"] = item.id;
  record["line"] = item.line;
  record["category"] = item.category;
  record["metric"] = item.metric;
  record["prediction"] = prediction.text;
  record["answer"] = item.answers.size() == 1 ? nlohmann::json(item.answers[0]) : nlohmann::json(item.answers);
  if (item.metric == "choice") record["extracted"] = prediction.score.extracted;
  record["score"] = prediction.score.score;
  record["tokens"] = prediction.tokens;
  return record;
}

}  // namespace qwen3vl
