// The Qwen3-VL text decoder (transformers' Qwen3VLTextModel + lm_head): embeddings in, logits out,
// with the per-request KV cache passed in explicitly. Weights are only read.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "model/kv_cache.h"
#include "model/moe.h"
#include "model/mrope.h"
#include "model/tensor_hook.h"
#include "model/text_weights.h"
#include "ops/ops.h"

namespace qwen3vl {

// TensorHook (model/tensor_hook.h) names: "layers.{l}" = output of decoder layer l, "norm" = after the final norm.

enum class LogitsRows { Last, All };

// DeepStack (Qwen3VLTextModel._deepstack_process): during the prefill that carries images, features of level k
// are added to the residual stream at the visual token rows after decoder layer k, for k < number of levels.
struct DeepstackInjection {
  std::vector<int64_t> rows;                               // visual token rows of this forward, in prompt order
  const std::vector<std::vector<float>>* features = nullptr;  // per level: [rows.size(), hidden]
};

// Rows per chunk of the dense MLP for n rows: n up to kMlpChunkRows, else n split evenly into chunks of at most
// that many. The MLP's [rows, intermediate] activations are the largest per-token scratch of a prefill (two of
// 6144 floats per token at 2B, 48 KiB), so a long prompt holds them for one chunk only.
constexpr int64_t kMlpChunkRows = 128;
inline int64_t mlp_chunk_rows(int64_t n) {
  const int64_t chunks = (n + kMlpChunkRows - 1) / kMlpChunkRows;
  return chunks <= 1 ? n : (n + chunks - 1) / chunks;
}

// Scratch buffers of one forward pass, reused across calls of a request so decoding does not reallocate.
struct DecoderWorkspace {
  std::vector<float> hidden, normed, q, k, v, attn, proj, gate, up, cos, sin;
  MoeWorkspace moe;  // MoE layers: scratch and the expert usage counter (moe.usage)
};

class TextDecoder {
 public:
  // ctx: the thread pool and kernels every op of forward() uses (a default Context: the calling thread alone).
  TextDecoder(const ModelConfig& config, const TextWeights& weights, const ops::Context& ctx = {});

  // inputs_embeds [n, hidden] for n new tokens at `positions`, appended to `cache` (which must have room).
  // Writes logits [1 or n, vocab] into `logits`.
  void forward(const float* inputs_embeds, int64_t n, const MropePositions& positions, KVCache& cache,
               DecoderWorkspace& work, LogitsRows rows, std::vector<float>& logits,
               const TensorHook& hook = nullptr, const DeepstackInjection* deepstack = nullptr) const;

  // Token embeddings [n, hidden] (embed_tokens rows), as HF's embed_tokens(input_ids).
  void embed(const int32_t* ids, int64_t n, float* out) const;

  Precision precision() const { return precision_; }
  const ops::Context& context() const { return ctx_; }
  KVCache make_cache(int64_t capacity) const;

 private:
  void attention_block(int64_t layer, int64_t n, KVCache& cache, DecoderWorkspace& work) const;
  void mlp_block(int64_t layer, int64_t n, DecoderWorkspace& work, const TensorHook& hook) const;

  const TextConfig& config_;
  const TextWeights& weights_;
  TextRotary rotary_;
  Precision precision_;
  ops::Context ctx_;
};

}  // namespace qwen3vl
