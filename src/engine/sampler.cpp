#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace qwen3vl {
namespace {

constexpr float kRemoved = -std::numeric_limits<float>::infinity();

int32_t argmax(const std::vector<float>& logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// The k-th largest logit, counting equal values separately (what std::nth_element with std::greater leaves at k-1):
// a min-heap of the k best seen so far for small k, one pass that rarely touches the heap; nth_element otherwise.
float kth_largest(const std::vector<float>& logits, int64_t k, std::vector<float>& scratch) {
  if (k > 256) {
    scratch.assign(logits.begin(), logits.end());
    std::nth_element(scratch.begin(), scratch.begin() + (k - 1), scratch.end(), std::greater<float>());
    return scratch[static_cast<size_t>(k - 1)];
  }
  scratch.assign(logits.begin(), logits.begin() + k);
  std::make_heap(scratch.begin(), scratch.end(), std::greater<float>());
  for (size_t i = static_cast<size_t>(k); i < logits.size(); ++i) {
    if (!(logits[i] > scratch.front())) continue;
    std::pop_heap(scratch.begin(), scratch.end(), std::greater<float>());
    scratch.back() = logits[i];
    std::push_heap(scratch.begin(), scratch.end(), std::greater<float>());
  }
  return scratch.front();
}

// A float as an unsigned key in the same order as `<` (-0 and +0 equal, as `<` sees them).
inline uint32_t order_key(float value) {
  if (value == 0.0f) value = 0.0f;
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
}

// Positions into `candidates` ordered by ascending logit, equal logits in candidate (= token id) order: the order
// of std::stable_sort by `<` over ids in increasing order. Each entry is (order key << 32 | position). Long lists
// by a stable least-significant-digit radix sort of the keys (four passes of one byte, the counts of all four taken
// in one pass), short ones by stable_sort.
void ascending_order(const std::vector<float>& logits, const std::vector<int32_t>& candidates,
                     std::vector<uint64_t>& order, std::vector<uint64_t>& buffer) {
  const size_t n = candidates.size();
  order.resize(n);
  for (size_t j = 0; j < n; ++j)
    order[j] = static_cast<uint64_t>(order_key(logits[static_cast<size_t>(candidates[j])])) << 32 | j;
  if (n < 1024) {
    std::stable_sort(order.begin(), order.end(), [](uint64_t a, uint64_t b) { return (a >> 32) < (b >> 32); });
    return;
  }
  buffer.resize(n);
  uint32_t counts[4][256] = {};
  for (uint64_t item : order)
    for (int digit = 0; digit < 4; ++digit) ++counts[digit][(item >> (32 + 8 * digit)) & 0xff];
  for (int digit = 0; digit < 4; ++digit) {
    const int shift = 32 + 8 * digit;
    uint32_t* count = counts[digit];
    if (count[(order[0] >> shift) & 0xff] == n) continue;  // one value for all: this pass would not move them
    uint32_t start = 0;
    for (int b = 0; b < 256; ++b) start += std::exchange(count[b], start);
    for (uint64_t item : order) buffer[count[(item >> shift) & 0xff]++] = item;
    order.swap(buffer);
  }
}

}  // namespace

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

void Sampler::apply_penalties(std::vector<float>& logits, const std::vector<int32_t>& context,
                              const std::vector<int32_t>& generated) const {
  if (params_.repetition_penalty != 1.0f) {
    const std::unordered_set<int32_t> seen(context.begin(), context.end());
    for (int32_t id : seen) {
      float& logit = logits[static_cast<size_t>(id)];
      logit = logit < 0 ? logit * params_.repetition_penalty : logit / params_.repetition_penalty;
    }
  }
  if (params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) {
    std::unordered_map<int32_t, int> counts;
    for (int32_t id : generated) ++counts[id];
    for (const auto& [id, count] : counts)
      logits[static_cast<size_t>(id)] -= params_.presence_penalty + params_.frequency_penalty * count;
  }
}

// softmax over the candidates, probs_[j] for candidates_[j]: the maximum, then the float exps summed in double in id
// order, each divided by the sum. Over the whole vocabulary this is the same: a removed token's exp(-inf) is 0 and
// adds nothing to the sum.
void Sampler::softmax(const std::vector<float>& logits) {
  float max_logit = kRemoved;
  for (int32_t id : candidates_) max_logit = std::max(max_logit, logits[static_cast<size_t>(id)]);
  probs_.resize(candidates_.size());
  double total = 0.0;
  for (size_t j = 0; j < candidates_.size(); ++j)
    total += probs_[j] = std::exp(logits[static_cast<size_t>(candidates_[j])] - max_logit);
  for (float& p : probs_) p = static_cast<float>(p / total);
}

// Drops the candidates whose flag in removed_ is set (their logits become kRemoved), keeping id order.
void Sampler::drop_removed(std::vector<float>& logits) {
  size_t kept = 0;
  for (size_t j = 0; j < candidates_.size(); ++j) {
    if (removed_[j]) logits[static_cast<size_t>(candidates_[j])] = kRemoved;
    else candidates_[kept++] = candidates_[j];
  }
  candidates_.resize(kept);
}

// TopKLogitsWarper: keep every token whose logit is >= the k-th largest (ties at the boundary survive). The first
// filter: it starts the candidate list (every id otherwise).
void Sampler::keep_top_k(std::vector<float>& logits) {
  const int64_t k = params_.top_k;
  candidates_.clear();
  if (k <= 0 || k >= static_cast<int64_t>(logits.size())) {
    candidates_.resize(logits.size());
    std::iota(candidates_.begin(), candidates_.end(), 0);
    return;
  }
  const float threshold = kth_largest(logits, k, values_);
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] < threshold) logits[i] = kRemoved;
    else candidates_.push_back(static_cast<int32_t>(i));
  }
}

// TopPLogitsWarper: in ascending order of logits, drop tokens while their cumulative probability is <= 1 - top_p;
// the most likely token is always kept. Removed tokens would come first in that order and add 0, so only the
// candidates need ordering.
void Sampler::keep_top_p(std::vector<float>& logits) {
  if (params_.top_p >= 1.0f) return;
  softmax(logits);
  ascending_order(logits, candidates_, order_, order_buffer_);
  removed_.assign(candidates_.size(), 0);
  float cumulative = 0.f;
  for (size_t i = 0; i + 1 < order_.size(); ++i) {
    const size_t j = static_cast<size_t>(order_[i] & 0xffffffffu);
    cumulative += probs_[j];
    if (cumulative <= 1.0f - params_.top_p) removed_[j] = 1;
  }
  drop_removed(logits);
}

// MinPLogitsWarper: drop tokens whose probability is below min_p times the top probability.
void Sampler::keep_min_p(std::vector<float>& logits) {
  if (params_.min_p <= 0.0f) return;
  softmax(logits);
  const float threshold = params_.min_p * *std::max_element(probs_.begin(), probs_.end());
  removed_.resize(candidates_.size());
  for (size_t j = 0; j < candidates_.size(); ++j) removed_[j] = probs_[j] < threshold;
  drop_removed(logits);
}

int32_t Sampler::draw(std::vector<float>& logits) {
  for (float& logit : logits) logit /= params_.temperature;
  keep_top_k(logits);
  keep_top_p(logits);
  keep_min_p(logits);
  softmax(logits);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  double target = uniform(rng_);
  for (size_t j = 0; j < candidates_.size(); ++j) {
    target -= probs_[j];
    if (target < 0 && probs_[j] > 0) return candidates_[j];
  }
  return argmax(logits);  // rounding left the draw past the end: take the most likely token
}

int32_t Sampler::next(std::vector<float>& logits, const std::vector<int32_t>& context,
                      const std::vector<int32_t>& generated) {
  apply_penalties(logits, context, generated);
  if (!params_.do_sample || params_.temperature <= 0.0f) return argmax(logits);
  return draw(logits);
}

}  // namespace qwen3vl
