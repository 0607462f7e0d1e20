// Accuracy of converted weights: the same token sequence through two loaded models (the weights as shipped and
// converted ones), compared position by position: KL(base || other) of the next-token distributions and whether
// the top-1 tokens agree. What `qwen3vl kld` prints.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/loaded_model.h"

namespace qwen3vl {

struct LogitDivergence {
  std::vector<double> kl;             // per position: sum_v p_base(v) (log p_base(v) - log p_other(v)), nats
  std::vector<int32_t> top1_base, top1_other;
  std::vector<double> margin;         // per position: log p_base(top-1) - log p_base(top-2), nats
  double mean_kl = 0, max_kl = 0;
  double top1_agreement = 0;          // fraction of positions whose argmax tokens are equal
  // The same over positions where the base's top-1 leads by at least kClearMargin: random-weight checkpoints have
  // flat distributions whose near-ties flip under any perturbation (bf16 logits of magnitude 4..8 are 1/32 apart, and
  // the flips seen in the tiny checkpoints have margins of 0..4 such steps), which says little about the format.
  static constexpr double kClearMargin = 0.25;
  double clear_top1_agreement = 0;
  int64_t clear_positions = 0;
};

// Runs ids through both decoders (text only, one prefill in chunks of `chunk` tokens, each model with its own
// cache) and compares the logits of every position.
LogitDivergence compare_logits(const LoadedModel& base, const LoadedModel& other, const std::vector<int32_t>& ids,
                               int64_t chunk = 64);

}  // namespace qwen3vl
