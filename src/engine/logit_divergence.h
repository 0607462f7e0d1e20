// Accuracy of converted weights, or of one engine against another: the same token sequence through two loaded
// models (the weights as shipped and converted ones), or through one model and against logits saved from elsewhere
// (io/logits_file.h), compared position by position: KL(base || other) of the next-token distributions and whether
// the top-1 tokens agree. What `qwen3vl kld` prints.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/loaded_model.h"
#include "vision/image_processor.h"

namespace qwen3vl {

struct LogitDivergence {
  std::vector<double> kl;             // per position: sum_v p_base(v) (log p_base(v) - log p_other(v)), nats
  std::vector<int32_t> top1_base, top1_other;
  std::vector<double> margin;         // per position: log p_base(top-1) - log p_base(top-2), nats
  std::vector<double> logit_margin;   // per position: the base's top-1 logit minus its top-2 logit
  double mean_kl = 0, max_kl = 0;
  double top1_agreement = 0;          // fraction of positions whose argmax tokens are equal
  // The same over positions where the base's top-1 leads by at least kClearMargin: random-weight checkpoints have
  // flat distributions whose near-ties flip under any perturbation (bf16 logits of magnitude 4..8 are 1/32 apart, and
  // the flips seen in the tiny checkpoints have margins of 0..4 such steps), which says little about the format.
  static constexpr double kClearMargin = 0.25;
  double clear_top1_agreement = 0;
  int64_t clear_positions = 0;
};

// The logits of every position of ids [n, vocab]: text only, one prefill in chunks of `chunk` tokens. Throws Error
// naming the first id outside the model's vocabulary.
std::vector<float> text_logits(const LoadedModel& model, const std::vector<int32_t>& ids, int64_t chunk = 64);

// The logits of every position of a prompt whose <|image_pad|> runs hold `images` (in order, as build_prefill
// fills them): the vision tower, DeepStack and 3-D positions as in generation, then one prefill of all n tokens, as
// transformers scores a teacher-forced sequence. No images: text_logits. Throws Error when the image tokens and
// the images' grids disagree, and on video tokens.
std::vector<float> prompt_logits(const LoadedModel& model, const std::vector<int32_t>& ids,
                                 const std::vector<ProcessedImage>& images);

// Compares n rows of `vocab` logits (rows may hold -inf: a token that distribution rules out).
LogitDivergence compare_logit_rows(const float* base, const float* other, int64_t n, int64_t vocab);

// Runs ids through both decoders and compares the logits of every position.
LogitDivergence compare_logits(const LoadedModel& base, const LoadedModel& other, const std::vector<int32_t>& ids,
                               int64_t chunk = 64);

}  // namespace qwen3vl
