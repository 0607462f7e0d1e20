#include "chat_service.h"

#include <algorithm>
#include <optional>
#include <random>

#include "api_error.h"
#include "core/error.h"
#include "core/timer.h"
#include "engine/grounding.h"
#include "engine/reasoning.h"
#include "engine/vision_prefill.h"
#include "vision/image_decode.h"

namespace qwen3vl {
namespace server {

namespace {

// Decoded images kept between planning the budget and resizing; past this, an image is decoded again later.
constexpr size_t kMaxKeptDecodedBytes = size_t{256} << 20;

// Bytes of text in the conversation: a prompt with more than a few times its context in bytes cannot fit, and is
// refused before the tokenizer spends time (and a heap entry per byte of one long word) on it.
size_t text_bytes(const std::vector<ChatMessage>& messages) {
  size_t bytes = 0;
  for (const ChatMessage& message : messages) {
    bytes += message.reasoning_content.size();
    for (const ContentPart& part : message.content) bytes += part.text.size();
    for (const ToolCall& call : message.tool_calls) bytes += call.name.size() + call.arguments_json.size();
  }
  return bytes;
}

// The token count in "you requested N tokens": exact for any max_tokens a client can send (up to INT64_MAX).
uint64_t requested_tokens(int64_t n_prompt, int64_t max_new) {
  return static_cast<uint64_t>(n_prompt) + static_cast<uint64_t>(std::max<int64_t>(max_new, 1));
}

}  // namespace

struct ChatService::ImageJob {
  const MediaPart* part = nullptr;
  std::string bytes;
  std::string hash;
  std::string cache_key;                   // hash, budget and the adapters that change the tower
  int64_t width = 0, height = 0;
  std::optional<Image> decoded;
  int64_t min_pixels = 0, max_pixels = 0;  // the budget this image is processed with
  int64_t tokens = 0;                      // visual tokens under that budget
  ProcessedImage processed;
  std::shared_ptr<const VisionOutput> features;
  bool cached = false;
};

ServerOptions resolved_options(ServerOptions options) {
  if (options.max_visual_tokens <= 0) options.max_visual_tokens = options.ctx_size;
  options.max_body_memory = std::max(options.max_body_memory, options.max_body_bytes);  // one full body always fits
  if (options.max_connections <= 0)
    options.max_connections = std::max(128, options.parallel + options.max_queue + 8);
  return options;
}

std::string served_model_id(const ServerOptions& options) {
  return options.model_alias.empty() ? folder_name(options.model_dir) : options.model_alias;
}

nlohmann::ordered_json grounding_json(const std::string& answer, const std::vector<PreparedChat::ImageInfo>& images) {
  nlohmann::ordered_json grounding = nlohmann::ordered_json::array();
  for (size_t i = 0; i < images.size(); ++i) {
    GroundingResult parsed = parse_grounding(answer, images[i].width, images[i].height);
    if (parsed.items.empty()) break;  // the same objects for every image, so none for any
    for (GroundingItem& item : parsed.items) item.image_index = static_cast<int>(i);
    nlohmann::ordered_json entry;
    entry["image_index"] = i;
    entry["width"] = images[i].width;
    entry["height"] = images[i].height;
    entry["items"] = nlohmann::ordered_json::parse(grounding_to_json(parsed));
    grounding.push_back(std::move(entry));
  }
  return grounding.empty() ? nlohmann::ordered_json() : grounding;
}

ChatService::ChatService(const LoadedModel& model, const ServerOptions& options, ImageCache& cache,
                         LoraRegistry& adapters)
    : model_(model), options_(options), cache_(cache), adapters_(adapters), media_(options),
      videos_(model, options, media_),
      context_size_(std::min<int64_t>(options.ctx_size, model.config.text_config.max_position_embeddings)) {}

SamplingParams ChatService::sampling_for(const ChatRequest& r) const {
  SamplingParams params = default_sampling(model_.generation);
  if (r.temperature) {
    params.temperature = static_cast<float>(*r.temperature);
    params.do_sample = *r.temperature > 0.0;
  }
  if (r.top_p) params.top_p = static_cast<float>(*r.top_p);
  if (r.top_k) params.top_k = *r.top_k <= 0 ? 0 : *r.top_k;
  if (r.min_p) params.min_p = static_cast<float>(*r.min_p);
  if (r.repetition_penalty) params.repetition_penalty = static_cast<float>(*r.repetition_penalty);
  params.presence_penalty = static_cast<float>(r.presence_penalty);
  params.frequency_penalty = static_cast<float>(r.frequency_penalty);
  params.seed = r.seed ? *r.seed : std::random_device{}();
  return params;
}

void ChatService::load_media(const ChatRequest& request, std::vector<ImageJob>& jobs, VideoJobs& videos,
                             PreparedChat& prepared, MediaBudget& budget) const {
  if (static_cast<int>(request.media.size()) > options_.max_media_items)
    bad_request("messages", "at most " + std::to_string(options_.max_media_items) + " images or videos per request",
                "too_many_media");
  const ImageProcessorConfig& config = model_.image_processor;
  const int64_t factor = config.patch_size * config.merge_size;
  const int64_t pixels_per_token = factor * factor;
  const bool transformers_rule = options_.resize_rule != "qwen-vl-utils";
  const int64_t default_min =
      options_.min_pixels.value_or(transformers_rule ? config.min_pixels : 4 * pixels_per_token);
  const int64_t default_max =
      options_.max_pixels.value_or(transformers_rule ? config.max_pixels : 16384 * pixels_per_token);
  if (!request.media.empty() && !model_.vision)
    bad_request(request.media.front().where, "this checkpoint has no vision tower", "unsupported_media");
  Stopwatch clock;
  size_t kept_bytes = 0;
  for (const MediaPart& part : request.media) {
    budget.check_deadline(part.where);
    if (part.kind == MediaPart::Kind::Video) {
      videos.push_back(videos_.open(part, budget));
      continue;
    }
    ImageJob job;
    job.part = &part;
    job.bytes = media_.load(part.url, part.where, options_.max_body_bytes, budget);
    job.hash = content_hash(job.bytes);
    if (auto size = cache_.size_of(job.hash)) {
      job.width = size->width;
      job.height = size->height;
    } else {
      try {
        job.decoded = decode_image_bytes(reinterpret_cast<const uint8_t*>(job.bytes.data()), job.bytes.size(),
                                         part.where, options_.max_image_pixels);
      } catch (const Error& error) {
        throw ApiError(400, error.what(), part.where, "invalid_image");
      }
      job.width = job.decoded->width;
      job.height = job.decoded->height;
      cache_.remember_size(job.hash, {job.width, job.height});
      kept_bytes += job.decoded->rgb.size();
      if (kept_bytes > kMaxKeptDecodedBytes) job.decoded.reset();
    }
    job.min_pixels = part.min_pixels.value_or(request.min_pixels.value_or(default_min));
    job.max_pixels = part.max_pixels.value_or(request.max_pixels.value_or(default_max));
    if (part.detail == "low") job.max_pixels = std::min<int64_t>(job.max_pixels, 256 * pixels_per_token);
    if (!part.min_pixels && !request.min_pixels) job.min_pixels = std::min(job.min_pixels, job.max_pixels);
    if (job.min_pixels > job.max_pixels)
      bad_request(part.where, "min_pixels (" + std::to_string(job.min_pixels) + ") exceeds max_pixels (" +
                                  std::to_string(job.max_pixels) + ")");
    jobs.push_back(std::move(job));
  }
  prepared.media_seconds += clock.seconds();
}

void ChatService::fit_budget(const ChatRequest& request, std::vector<ImageJob>& jobs, VideoJobs& videos) const {
  if (jobs.empty() && videos.empty()) return;
  const ImageProcessorConfig& config = model_.image_processor;
  const int64_t factor = config.patch_size * config.merge_size;
  const int64_t pixels_per_token = factor * factor;
  const bool transformers_rule = options_.resize_rule != "qwen-vl-utils";
  auto tokens_for = [&](const ImageJob& job, int64_t min_pixels, int64_t max_pixels) -> int64_t {
    if (!config.do_resize) return (job.height / factor) * (job.width / factor);
    try {
      const auto size = transformers_rule
                            ? smart_resize(job.height, job.width, factor, min_pixels, max_pixels)
                            : smart_resize_qwen_vl_utils(job.height, job.width, factor, min_pixels, max_pixels);
      return (size.first / factor) * (size.second / factor);
    } catch (const Error& error) {
      throw ApiError(400, job.part->where + ": " + error.what(), job.part->where, "invalid_image");
    }
  };
  const int64_t cap = std::min(request.max_visual_tokens.value_or(options_.max_visual_tokens),
                               options_.max_visual_tokens);
  int64_t total = 0;
  for (ImageJob& job : jobs) total += job.tokens = tokens_for(job, job.min_pixels, job.max_pixels);
  for (const auto& video : videos) total += videos_.tokens(video->planned);
  if (total <= cap) return;
  // Over the request's total: shrink every image and video by the same factor (each at least one merged token;
  // a video's budget is over all its frames, as transformers' size.longest_edge).
  std::vector<int64_t> natural;
  for (const ImageJob& job : jobs) natural.push_back(job.tokens);
  std::vector<int64_t> natural_video_pixels;
  for (const auto& video : videos)
    natural_video_pixels.push_back(static_cast<int64_t>(video->planned.frame_indices.size()) *
                                   video->planned.resized_height * video->planned.resized_width);
  double scale = static_cast<double>(cap) / static_cast<double>(total);
  for (int round = 0; round < 40 && scale > 0; ++round) {
    int64_t sum = 0;
    std::vector<std::pair<int64_t, int64_t>> budgets;
    for (size_t i = 0; i < jobs.size(); ++i) {
      const int64_t max_pixels = std::max<int64_t>(
          pixels_per_token, static_cast<int64_t>(static_cast<double>(natural[i] * pixels_per_token) * scale));
      const int64_t min_pixels = std::min(jobs[i].min_pixels, max_pixels);
      budgets.emplace_back(min_pixels, max_pixels);
      sum += tokens_for(jobs[i], min_pixels, max_pixels);
    }
    std::vector<VideoOptions> video_options;
    std::vector<ProcessedVideo> video_plans;
    for (size_t i = 0; i < videos.size(); ++i) {
      VideoOptions o = videos[i]->options;
      o.total_pixels = std::max<int64_t>(pixels_per_token,
                                         static_cast<int64_t>(static_cast<double>(natural_video_pixels[i]) * scale));
      o.min_pixels = std::min(o.min_pixels.value_or(videos_.config().min_pixels), *o.total_pixels);
      if (o.max_pixels) o.max_pixels = std::min(*o.max_pixels, *o.total_pixels);
      video_plans.push_back(videos_.plan(*videos[i], o));
      video_options.push_back(o);
      sum += videos_.tokens(video_plans.back());
    }
    if (sum <= cap) {
      for (size_t i = 0; i < jobs.size(); ++i) {
        jobs[i].min_pixels = budgets[i].first;
        jobs[i].max_pixels = budgets[i].second;
        jobs[i].tokens = tokens_for(jobs[i], budgets[i].first, budgets[i].second);
      }
      for (size_t i = 0; i < videos.size(); ++i) {
        videos[i]->options = video_options[i];
        videos[i]->planned = std::move(video_plans[i]);
      }
      return;
    }
    scale *= std::min(0.95, static_cast<double>(cap) / static_cast<double>(sum));
  }
  bad_request(request.max_visual_tokens ? "max_visual_tokens" : "messages",
              "the request's " + std::to_string(jobs.size() + videos.size()) +
                  " images and videos cannot be shrunk to fit " + std::to_string(cap) + " visual tokens",
              "too_many_visual_tokens");
}

void ChatService::encode_images(std::vector<ImageJob>& jobs, PreparedChat& prepared) const {
  std::vector<ProcessedImage> to_encode;
  std::vector<size_t> index;
  for (size_t i = 0; i < jobs.size(); ++i)
    if (!jobs[i].features) {
      to_encode.push_back(std::move(jobs[i].processed));
      index.push_back(i);
    }
  if (to_encode.empty()) return;
  Stopwatch clock;
  std::vector<std::shared_ptr<const VisionOutput>> outputs =
      qwen3vl::encode_images(model_, to_encode, prepared.generation.adapters.get());
  prepared.vision_seconds = clock.seconds();
  for (size_t k = 0; k < index.size(); ++k) {
    ImageJob& job = jobs[index[k]];
    job.features = outputs[k];
    to_encode[k].pixel_values = {};
    job.processed = std::move(to_encode[k]);
    cache_.insert(job.cache_key, {job.processed, job.features});
  }
}

// What prepare() has settled by the time the prompt ids exist; tokenize() stops there.
struct ChatService::Plan {
  explicit Plan(const ServerOptions& options) : budget(options) {}
  PreparedChat prepared;
  std::vector<ImageJob> jobs;
  VideoJobs videos;
  std::vector<ProcessedImage> grids;  // the images' grids and sizes, without pixels
  ChatTokens tokens;
  MediaBudget budget;  // one deadline for loading, decoding, resizing and encoding all media
};

void ChatService::check_text_bytes(uint64_t bytes, const std::string& param) const {
  if (bytes > max_text_bytes())
    throw ApiError(400,
                   param + ": " + std::to_string(bytes) +
                       " bytes of text, more than can fit in this model's context of " +
                       std::to_string(context_size_) + " tokens",
                   param, "context_length_exceeded");
}

ChatService::Plan ChatService::plan(const ChatRequest& request, bool for_generation) const {
  const LoraRegistry::Selection adapters = adapters_.select(request.model, request.lora);
  check_text_bytes(text_bytes(request.messages), "messages");
  Plan plan(options_);
  PreparedChat& prepared = plan.prepared;
  prepared.generation.adapters = adapters.weights;
  prepared.thinking = model_.chat_template.kind() == ChatTemplateKind::Thinking;
  std::vector<ImageJob>& jobs = plan.jobs;
  VideoJobs& videos = plan.videos;
  MediaBudget& budget = plan.budget;
  load_media(request, jobs, videos, prepared, budget);
  fit_budget(request, jobs, videos);

  // Sizes and grids: from the cache, or by resizing now (the vision tower runs after the context check).
  Stopwatch clock;
  const int64_t merge = model_.image_processor.merge_size;
  std::vector<ProcessedImage>& grids = plan.grids;
  // A tower adapter's image features are its own: they are cached apart from the base's.
  const bool adapted_tower = adapters.weights && adapters.weights->touches_vision();
  for (ImageJob& job : jobs) {
    job.cache_key = ImageCache::make_key(job.hash, job.min_pixels, job.max_pixels, options_.resize_rule,
                                         adapted_tower ? adapters.key : "");
    if (auto entry = cache_.find(job.cache_key, /*count=*/for_generation)) {
      job.processed = entry->image;
      job.features = entry->features;
      job.cached = true;
    } else {
      budget.check_deadline(job.part->where);
      try {
        if (!job.decoded)
          job.decoded = decode_image_bytes(reinterpret_cast<const uint8_t*>(job.bytes.data()), job.bytes.size(),
                                           job.part->where, options_.max_image_pixels);
        PixelBudget budget;
        budget.min_pixels = job.min_pixels;
        budget.max_pixels = job.max_pixels;
        job.processed = preprocess_image(*job.decoded, model_.image_processor, budget,
                                         options_.resize_rule == "qwen-vl-utils" ? ResizeRule::QwenVlUtils
                                                                                 : ResizeRule::Transformers);
      } catch (const Error& error) {
        const std::string message = error.what();
        throw ApiError(400, message.rfind(job.part->where, 0) == 0 ? message : job.part->where + ": " + message,
                       job.part->where, "invalid_image");
      }
      job.decoded.reset();
    }
    job.bytes = {};
    ProcessedImage grid_only;
    grid_only.grid = job.processed.grid;
    grid_only.original_width = job.processed.original_width;
    grid_only.original_height = job.processed.original_height;
    grid_only.resized_width = job.processed.resized_width;
    grid_only.resized_height = job.processed.resized_height;
    grids.push_back(grid_only);
    PreparedChat::ImageInfo info;
    info.width = job.processed.original_width;
    info.height = job.processed.original_height;
    info.resized_width = job.processed.resized_width;
    info.resized_height = job.processed.resized_height;
    info.visual_tokens = job.processed.grid.merged_tokens(merge);
    info.cached = job.cached;
    prepared.visual_tokens += info.visual_tokens;
    prepared.images.push_back(info);
  }
  for (const auto& video : videos) {
    PreparedChat::VideoInfo info;
    info.width = video->planned.original_width;
    info.height = video->planned.original_height;
    info.resized_width = video->planned.resized_width;
    info.resized_height = video->planned.resized_height;
    info.frames = static_cast<int64_t>(video->planned.frame_indices.size());
    info.visual_tokens = videos_.tokens(video->planned);
    prepared.video_tokens += info.visual_tokens;
    prepared.videos.push_back(info);
  }
  prepared.image_tokens = prepared.visual_tokens;
  prepared.visual_tokens += prepared.video_tokens;
  prepared.media_seconds += clock.seconds();
  const int64_t cap = std::min(request.max_visual_tokens.value_or(options_.max_visual_tokens),
                               options_.max_visual_tokens);
  if (prepared.visual_tokens > cap)
    bad_request("messages", "the images and videos need " + std::to_string(prepared.visual_tokens) +
                                " visual tokens, more than the limit of " + std::to_string(cap),
                "too_many_visual_tokens");

  try {
    std::vector<ProcessedVideo> video_plans;
    for (const auto& video : videos) video_plans.push_back(video->planned);
    plan.tokens = tokenize_chat(model_, request.messages, grids, video_plans);
  } catch (const Error& error) {
    throw ApiError(400, std::string("messages: ") + error.what(), "messages");
  }
  return plan;
}

ChatTokens ChatService::tokenize(const ChatRequest& request) const {
  return plan(request, /*for_generation=*/false).tokens;
}

PreparedChat ChatService::prepare(const ChatRequest& request) const {
  Plan plan = this->plan(request, /*for_generation=*/true);
  PreparedChat& prepared = plan.prepared;
  std::vector<ImageJob>& jobs = plan.jobs;
  MediaBudget& budget = plan.budget;
  GenerationRequest& generation = prepared.generation;
  generation.prompt_ids = std::move(plan.tokens.ids);
  const int64_t n_prompt = static_cast<int64_t>(generation.prompt_ids.size());
  const int64_t room = context_size_ - n_prompt;
  const int64_t max_new = request.max_tokens ? *request.max_tokens : std::min(options_.n_predict, room);
  if (room < 1 || max_new > room)
    throw ApiError(400,
                   "This model's maximum context length is " + std::to_string(context_size_) +
                       " tokens. However, you requested " + std::to_string(requested_tokens(n_prompt, max_new)) +
                       " tokens (" + std::to_string(n_prompt) + " in the messages, " +
                       std::to_string(std::max<int64_t>(max_new, 1)) +
                       " in the completion). Please reduce the length of the messages or completion.",
                   request.max_tokens ? "max_tokens" : "messages", "context_length_exceeded");
  generation.max_new_tokens = max_new;
  generation.sampling = sampling_for(request);
  for (int64_t id : model_.generation.eos_token_id) generation.stop_token_ids.push_back(static_cast<int32_t>(id));
  generation.stop_strings = request.stop;

  if (!jobs.empty()) budget.check_deadline("messages");
  encode_images(jobs, prepared);
  generation.images = std::move(plan.grids);
  Stopwatch video_clock;
  for (const auto& video : plan.videos) {
    budget.check_deadline(video->part->where);
    videos_.process(*video, budget);
    generation.videos.push_back(std::move(video->planned));
  }
  prepared.media_seconds += video_clock.seconds();
  for (ImageJob& job : jobs) generation.image_features.push_back(job.features);
  return std::move(prepared);  // a reference into the plan: moved, or the videos' pixels would be copied
}

ChatOutcome ChatService::run(PreparedChat& prepared, const std::function<bool(const ReplyDelta&)>& on_delta) const {
  ReasoningStream split;
  auto deliver = [&](const std::vector<ReplyPiece>& pieces, ReplyDelta& delta) {
    for (const ReplyPiece& piece : pieces)
      (piece.channel == ReplyChannel::Reasoning ? delta.reasoning : delta.content) += piece.text;
  };
  const GenerationResult result = generate(model_, prepared.generation, [&](const std::string& text) {
    ReplyDelta delta;
    if (prepared.thinking) {
      deliver(split.push(text), delta);
    } else {
      delta.content = text;
    }
    return on_delta(delta);
  });
  ChatOutcome outcome;
  outcome.finish_reason = result.finish_reason;
  outcome.prompt_tokens = result.stats.prompt_tokens;
  outcome.completion_tokens = result.stats.generated_tokens;
  outcome.stats = result.stats;
  outcome.stats.vision_seconds += prepared.vision_seconds;  // cached-or-encoded images + videos in generate
  if (result.finish_reason == "cancelled") return outcome;
  if (prepared.thinking) {
    ReplyDelta rest;
    deliver(split.finish(), rest);
    if (!rest.empty()) on_delta(rest);
    const ReasoningSplit parts = split_reasoning(result.text);
    outcome.reasoning = parts.reasoning;
    outcome.content = parts.answer;
  } else {
    outcome.content = result.text;
  }
  outcome.grounding = grounding_json(outcome.content, prepared.images);
  return outcome;
}

}  // namespace server
}  // namespace qwen3vl
