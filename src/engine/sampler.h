// Next-token selection: HF's logits processing order (repetition penalty, then temperature -> top-k -> top-p
// -> min-p), softmax and a seeded draw; greedy (argmax, first index on ties, as torch.argmax) when not sampling.
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

  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace qwen3vl
