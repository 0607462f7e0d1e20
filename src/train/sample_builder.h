// One dataset item -> one training sample: what qwen-vl-finetune's preprocess_qwen_visual and
// LazySupervisedDataset._get_item compute (Qwen3-VL repository, qwen-vl-finetune/qwenvl/data/data_processor.py),
// with the engine's own preprocessing:
//   images and videos through the Qwen3-VL processors (vision/image_processor.h, vision/video_processor.h) with the
//   run's pixel and frame budgets -> the checkpoint's chat template without a generation prompt
//   (tokenizer/chat_template_renderer.h) ->
//   image pads and per-frame-pair video stamps expanded as Qwen3VLProcessor does (engine/prompt.h,
//   engine/video_prompt.h) -> token ids -> labels (train/labels.h) -> 3-D positions (model/rope_index.h).
// That is processor.apply_chat_template(messages, tokenize=True, return_dict=True) followed by the label scan and
// get_rope_index_3 (qwen-vl-finetune/qwenvl/data/rope2d.py, the same arithmetic as transformers'
// Qwen3VLModel.get_rope_index).
//
// Length: a sample longer than max_length is an error naming it, not truncated. The official flattened/packed path
// does not truncate at all, and its padded collator cuts input ids, labels and positions at model_max_length, which
// can cut through an image's pad tokens (the pixel values then no longer match) or drop every answer token (a NaN
// loss). An error lets the user skip such samples (counted) or stop and raise the limit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/loaded_model.h"
#include "engine/video_prompt.h"
#include "model/mrope.h"
#include "train/labels.h"
#include "train/sft_data.h"
#include "vision/image_processor.h"
#include "vision/video_processor.h"

namespace qwen3vl {

// Per-run budgets, as qwen-vl-finetune's update_processor_pixels sets them (--min_pixels / --max_pixels and the
// video_* flags); unset fields keep the checkpoint's processor config. Pixel counts are the processor's own units
// (Qwen3-VL: one merged token = 32 x 32 pixels); the video pixel budget spans all sampled frames (T * h * w), as
// size.longest_edge does in Qwen3VLVideoProcessor.
struct MediaBudget {
  std::optional<int64_t> min_pixels, max_pixels;              // images: size.shortest_edge / size.longest_edge
  std::optional<int64_t> video_min_pixels, video_max_pixels;  // videos: size.shortest_edge / size.longest_edge
  std::optional<double> video_fps;                            // frames sampled per second
  std::optional<int64_t> video_min_frames, video_max_frames;
};

struct SampleOptions {
  MediaBudget budget;
  int64_t max_length = 0;  // longest sample in tokens (--model-max-length); 0: no limit
  AssistantSpanRule span_rule = AssistantSpanRule::AnyAssistantToken;
  // How the video placeholder expands: transformers 5.x (the pinned reference) or 4.57 (the official scripts' pin).
  VideoPlaceholderStyle video_style = VideoPlaceholderStyle::Transformers5;
};

struct TrainSample {
  std::string where;                   // the item's "FILE:LINE" (SftItem::where)
  std::vector<int32_t> input_ids;      // [n]
  std::vector<int32_t> labels;         // [n], kIgnoreLabel where not supervised; unshifted
  MropePositions positions;            // [n] on T, H, W: get_rope_index of input_ids, starting at 0
  std::vector<ProcessedImage> images;  // in prompt order: grid (image_grid_thw) and pixel_values
  std::vector<ProcessedVideo> videos;  // in prompt order: grid (video_grid_thw), frame times, pixel_values

  int64_t size() const { return static_cast<int64_t>(input_ids.size()); }
  int64_t supervised_tokens() const { return count_supervised(labels); }
};

class SampleBuilder {
 public:
  // `tokenizer` must outlive the builder. Throws Error when the tokenizer lacks a token the labels need.
  SampleBuilder(const Tokenizer& tokenizer, const ModelConfig& config, ChatTemplateRenderer chat_template,
                const ImageProcessorConfig& image, const VideoProcessorConfig& video, const SampleOptions& options);

  // A loaded checkpoint's tokenizer, config, chat template and processor configs (the video one read from
  // model.dir). `model` must outlive the builder.
  static SampleBuilder for_model(const LoadedModel& model, const SampleOptions& options);

  // Decodes and preprocesses the item's media, renders, tokenizes and labels it. Throws Error
  // "FILE:LINE: what" (item.where()) for an undecodable or missing file, a sample longer than max_length or one
  // without any supervised token. Safe to call from several threads at once.
  TrainSample build(const SftItem& item) const;

  // The template text with the media placeholders expanded (what is tokenized), for tests and --verbose output.
  std::string prompt_text(const SftItem& item, const std::vector<ProcessedImage>& images,
                          const std::vector<ProcessedVideo>& videos) const;

  const ImageProcessorConfig& image_config() const { return image_; }
  const VideoProcessorConfig& video_config() const { return video_; }
  const LabelTokens& tokens() const { return tokens_; }

 private:
  const Tokenizer& tokenizer_;
  ModelConfig config_;
  ChatTemplateRenderer chat_template_;
  ImageProcessorConfig image_;
  VideoProcessorConfig video_;
  SampleOptions options_;
  LabelTokens tokens_;
};

}  // namespace qwen3vl
