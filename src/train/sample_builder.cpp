#include "train/sample_builder.h"

#include "core/error.h"
#include "engine/prompt.h"
#include "model/rope_index.h"
#include "vision/image_decode.h"

namespace qwen3vl {
namespace {

ImageProcessorConfig with_budget(ImageProcessorConfig image, const MediaBudget& budget) {
  if (budget.min_pixels) image.min_pixels = *budget.min_pixels;
  if (budget.max_pixels) image.max_pixels = *budget.max_pixels;
  return image;
}

VideoProcessorConfig with_budget(VideoProcessorConfig video, const MediaBudget& budget) {
  if (budget.video_min_pixels) video.min_pixels = *budget.video_min_pixels;
  if (budget.video_max_pixels) video.max_pixels = *budget.video_max_pixels;
  if (budget.video_fps) video.sampling.fps = *budget.video_fps;
  if (budget.video_min_frames) video.sampling.min_frames = *budget.video_min_frames;
  if (budget.video_max_frames) video.sampling.max_frames = *budget.video_max_frames;
  return video;
}

std::vector<GridTHW> grids_of(const std::vector<ProcessedImage>& images) {
  std::vector<GridTHW> grids;
  for (const ProcessedImage& image : images) grids.push_back(image.grid);
  return grids;
}

std::vector<GridTHW> grids_of(const std::vector<ProcessedVideo>& videos) {
  std::vector<GridTHW> grids;
  for (const ProcessedVideo& video : videos) grids.push_back(video.grid);
  return grids;
}

}  // namespace

SampleBuilder::SampleBuilder(const Tokenizer& tokenizer, const ModelConfig& config, ChatTemplateRenderer chat_template,
                             const ImageProcessorConfig& image, const VideoProcessorConfig& video,
                             const SampleOptions& options)
    : tokenizer_(tokenizer),
      config_(config),
      chat_template_(std::move(chat_template)),
      image_(with_budget(image, options.budget)),
      video_(with_budget(video, options.budget)),
      options_(options),
      tokens_(label_tokens(tokenizer)) {}

SampleBuilder SampleBuilder::for_model(const LoadedModel& model, const SampleOptions& options) {
  if (!model.tokenizer) throw_error(model.dir, ": the checkpoint has no tokenizer.json, which training data needs");
  return SampleBuilder(*model.tokenizer, model.config, model.chat_template, model.image_processor,
                       load_video_processor_config(model.dir), options);
}

std::string SampleBuilder::prompt_text(const SftItem& item, const std::vector<ProcessedImage>& images,
                                       const std::vector<ProcessedVideo>& videos) const {
  ChatTemplateOptions template_options;
  template_options.add_generation_prompt = false;  // processor.apply_chat_template's default
  const int64_t merge = config_.vision_config.spatial_merge_size;
  return expand_video_placeholders(
      expand_image_placeholders(chat_template_.render(item.messages, template_options), images, merge), videos, merge,
      config_.vision_config.temporal_patch_size, options_.video_style);
}

TrainSample SampleBuilder::build(const SftItem& item) const {
  TrainSample sample;
  sample.where = item.where();
  try {
    for (const std::string& path : item.images) sample.images.push_back(preprocess_image(decode_image_file(path), image_));
    for (const std::string& path : item.videos) sample.videos.push_back(preprocess_video_file(path, video_));
    sample.input_ids = tokenizer_.encode(prompt_text(item, sample.images, sample.videos));
    if (options_.max_length > 0 && sample.size() > options_.max_length)
      throw_error(sample.size(), " tokens, more than the maximum length ", options_.max_length,
                  " (--model-max-length); the sample is not truncated");
    sample.labels = assistant_labels(sample.input_ids, tokens_, options_.span_rule);
    if (sample.supervised_tokens() == 0)
      throw_error("no supervised token: the sample has no assistant answer closed by <|im_end|>");
    sample.positions = get_rope_index(sample.input_ids, config_, grids_of(sample.images), grids_of(sample.videos))
                           .positions;
  } catch (const Error& error) {
    throw_error(sample.where, ": ", error.what());
  }
  return sample;
}

}  // namespace qwen3vl
