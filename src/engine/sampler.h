// Next-token selection: HF's logits processing order (repetition penalty, then temperature -> top-k -> top-p
// -> min-p), softmax and a seeded draw; greedy (argmax, first index on ties, as torch.argmax) when not sampling.
//
// Cost: after the penalties and the temperature, each filter works on the tokens still in play (removed ones have
// probability 0 and change no sum), so top-k is one pass over the vocabulary, and the softmaxes, the top-p order and
// the draw after it cover only the k survivors. Top-p alone orders the whole vocabulary by a radix sort. The results
// are those of the plain algorithm (full softmaxes, a stable sort of every id) bit for bit: same candidates, same
// order of every sum, same random draws (tests/unit/test_sampler.cpp keeps that algorithm and compares).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace qwen3vl {

struct SamplingParams {
  bool do_sample = false;          // false, or temperature <= 0: greedy
  float temperature = 1.0f;
  int64_t top_k = 0;               // 0: off
  float top_p = 1.0f;              // 1: off
  float min_p = 0.0f;              // 0: off
  float repetition_penalty = 1.0f; // HF: over prompt and generated tokens; divides positive logits, multiplies negative
  float presence_penalty = 0.0f;   // OpenAI/vLLM: subtracted once from every token already generated
  float frequency_penalty = 0.0f;  // OpenAI/vLLM: subtracted per occurrence in the generated tokens
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // logits [vocab] are modified in place. `context` = prompt + generated ids, `generated` = generated ids only.
  int32_t next(std::vector<float>& logits, const std::vector<int32_t>& context, const std::vector<int32_t>& generated);

  const SamplingParams& params() const { return params_; }

 private:
  void apply_penalties(std::vector<float>& logits, const std::vector<int32_t>& context,
                       const std::vector<int32_t>& generated) const;
  int32_t draw(std::vector<float>& logits);
  void keep_top_k(std::vector<float>& logits);
  void keep_top_p(std::vector<float>& logits);
  void keep_min_p(std::vector<float>& logits);
  void softmax(const std::vector<float>& logits);
  void drop_removed(std::vector<float>& logits);

  SamplingParams params_;
  std::mt19937_64 rng_;
  // Per-draw scratch, kept to avoid allocating per token: the ids still in play (increasing), their probabilities,
  // removal flags, and the top-k / top-p work buffers.
  std::vector<int32_t> candidates_;
  std::vector<float> probs_;
  std::vector<uint8_t> removed_;
  std::vector<float> values_;
  std::vector<uint64_t> order_, order_buffer_;  // (logit order key << 32 | position in candidates_)
};

}  // namespace qwen3vl
