// Weight formats at load: binding tensors that `qwen3vl quantize` stored quantized, and converting the weights of a
// checkpoint as shipped into another format (LoadOptions::weight_format / vision_format) on the thread pool.
//
// What is converted: every nn.Linear weight of the decoder layers (q/k/v/o, gate/up/down, MoE experts, transposed
// to out-major first since the quantized formats are row formats), lm_head (a separate copy when tied to
// embed_tokens; in q4 mode lm_head is made q8: it is the one matrix whose error goes straight into the logits, as
// llama.cpp keeps its output tensor at 6 bits), and in the vision tower the block and merger linears. What stays as
// shipped: embed_tokens (a row lookup: memory-mapped, only the touched rows are read), norms, biases, the MoE router,
// the patch embedding and pos_embed (small, and first in the tower).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/safetensors.h"
#include "model/text_weights.h"
#include "model/vision_weights.h"
#include "ops/ops.h"

namespace qwen3vl {

// Row j (output feature) of `w` as float, whatever its layout and format (quantized rows dequantized).
void read_weight_row(const WeightMatrix& w, int64_t j, float* out);

// Throws Error naming the file and tensor unless `view` holds a dtype ops::linear reads: F32, F16, BF16, or Q8 / Q4.
void check_matrix_dtype(const TensorView& view);
// A weight matrix bound from `view` (its shape checked against rows x cols by the caller): the dtype is checked, and
// the stored bytes against the format's size (Error naming the file and tensor).
WeightMatrix bind_weight_matrix(const TensorView& view, int64_t rows, int64_t cols);
// A table read by rows (embed_tokens, pos_embed: ops::embedding): as bind_weight_matrix, but F32, F16 or BF16 only.
WeightMatrix bind_embedding_table(const TensorView& view, int64_t rows, int64_t cols);
// A norm weight or bias of `size` elements (shape checked by the caller): F32, F16 or BF16 only, which is all the
// kernels read.
WeightVector bind_weight_vector(const TensorView& view, int64_t size);

// One converted tensor, as `qwen3vl quantize` writes it: the HF name, the format, the logical shape ([rows, cols],
// or [experts, rows, cols] for fused MoE experts) and its bytes.
struct ConvertedTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t bytes = 0;
};

// The memory of converted weights (the WeightMatrix views point into it) and what was converted.
struct ConvertedWeights {
  std::vector<std::shared_ptr<uint8_t>> buffers;
  std::vector<ConvertedTensor> tensors;
  size_t bytes = 0;
};

// Converts the weights named above to `format` (Q8, Q4, BF16, F16; a weight already in that format is left alone),
// releasing each source tensor's pages after its conversion. `pool` may be null (one thread).
void convert_text_weights(TextWeights& weights, const TensorStore& store, DType format, ThreadPool* pool,
                          ConvertedWeights& out);
// Vision tower: BF16 or Q8.
void convert_vision_weights(VisionWeights& weights, const TensorStore& store, DType format, ThreadPool* pool,
                            ConvertedWeights& out);

}  // namespace qwen3vl
