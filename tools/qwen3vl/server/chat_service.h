// A chat completion from a parsed request to generated text, without any HTTP: media are loaded, decoded and
// fitted into the request's pixel and visual-token budget, vision outputs come from the content-keyed cache or the
// vision tower, the prompt is rendered and checked against the context, and generation streams reply deltas
// (reasoning apart from the answer for Thinking checkpoints). Stateless apart from the shared cache: any number of
// threads may call it at once, each with its own PreparedChat.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat_request.h"
#include "engine/generate.h"
#include "engine/loaded_model.h"
#include "engine/tokenize.h"
#include "image_cache.h"
#include "lora_registry.h"
#include "media_source.h"
#include "server_options.h"
#include "video_input.h"

namespace qwen3vl {
namespace server {

struct PreparedChat {
  GenerationRequest generation;  // prompt ids, image grids and their vision outputs, sampling, stops
  struct ImageInfo {
    int64_t width = 0, height = 0;        // original image
    int64_t resized_width = 0, resized_height = 0;
    int64_t visual_tokens = 0;
    bool cached = false;                  // vision output came from the cache
  };
  std::vector<ImageInfo> images;
  struct VideoInfo {
    int64_t width = 0, height = 0, resized_width = 0, resized_height = 0;
    int64_t frames = 0;                   // sampled frames
    int64_t visual_tokens = 0;
  };
  std::vector<VideoInfo> videos;
  int64_t visual_tokens = 0;              // images and videos
  int64_t image_tokens = 0, video_tokens = 0;
  bool thinking = false;                  // Thinking template: the reply starts inside <think>
  double media_seconds = 0.0;             // loading, decoding, resizing
  double vision_seconds = 0.0;            // vision tower for the images not in the cache (videos: in generate)
};

struct ReplyDelta {
  std::string content, reasoning;
  bool empty() const { return content.empty() && reasoning.empty(); }
};

struct ChatOutcome {
  std::string content;
  std::string reasoning;        // Thinking checkpoints only
  std::string finish_reason;    // "stop", "length" or "cancelled"
  int64_t prompt_tokens = 0, completion_tokens = 0;
  nlohmann::ordered_json grounding;  // null, or one entry per image: {"image_index", "width", "height", "items"}
  GenerationStats stats;
};

// The options with the limits left 0 ("automatic") made concrete: max_visual_tokens (ctx_size), max_connections,
// and max_body_memory at least one body.
ServerOptions resolved_options(ServerOptions options);

// The model id the server answers to: --alias, else the checkpoint folder's name.
std::string served_model_id(const ServerOptions& options);

// The reply's bbox_2d / point_2d objects mapped onto each image of the request (pixels of the original image):
// [{"image_index", "width", "height", "items": grounding_to_json items}], or null when the reply has none.
nlohmann::ordered_json grounding_json(const std::string& answer, const std::vector<PreparedChat::ImageInfo>& images);

class ChatService {
 public:
  ChatService(const LoadedModel& model, const ServerOptions& options, ImageCache& cache, LoraRegistry& adapters);

  const std::string& model_id() const { return adapters_.base_id(); }
  const LoadedModel& model() const { return model_; }
  int64_t context_size() const { return context_size_; }

  // 404 when `requested` is neither empty, this model's id nor a LoRA adapter's name.
  void check_model(const std::string& requested) const { adapters_.check_model(requested); }

  // Everything up to generation, the request's LoRA adapters included; throws ApiError (4xx) for anything the
  // request got wrong.
  PreparedChat prepare(const ChatRequest& request) const;

  // The prompt prepare() builds for the request (its media loaded and fitted to the budget, placeholders expanded),
  // without running the vision tower or checking room for a completion: POST /tokenize with messages.
  ChatTokens tokenize(const ChatRequest& request) const;

  // Text beyond 16 bytes per token of context cannot fit in it; such requests are refused before the tokenizer
  // spends time on them (ApiError 400 context_length_exceeded naming `param`).
  uint64_t max_text_bytes() const { return static_cast<uint64_t>(context_size_) * 16; }
  void check_text_bytes(uint64_t bytes, const std::string& param) const;

  // Generates. `on_delta` sees every piece of text as it becomes final (also empty deltas, so it can check for a
  // departed client); returning false cancels generation (finish_reason "cancelled").
  ChatOutcome run(PreparedChat& prepared, const std::function<bool(const ReplyDelta&)>& on_delta) const;

 private:
  struct ImageJob;
  struct Plan;
  using VideoJobs = std::vector<std::unique_ptr<VideoJob>>;
  // for_generation: false looks images up in the cache without counting (tokenize uses their grids alone).
  Plan plan(const ChatRequest& request, bool for_generation) const;
  void load_media(const ChatRequest& request, std::vector<ImageJob>& jobs, VideoJobs& videos, PreparedChat& prepared,
                  MediaBudget& budget) const;
  void fit_budget(const ChatRequest& request, std::vector<ImageJob>& jobs, VideoJobs& videos) const;
  void encode_images(std::vector<ImageJob>& jobs, PreparedChat& prepared) const;
  SamplingParams sampling_for(const ChatRequest& request) const;

  const LoadedModel& model_;
  const ServerOptions& options_;
  ImageCache& cache_;
  LoraRegistry& adapters_;
  MediaSource media_;
  VideoInputs videos_;
  int64_t context_size_;
};

}  // namespace server
}  // namespace qwen3vl
