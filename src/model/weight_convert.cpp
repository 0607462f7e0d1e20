#include "model/weight_convert.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.h"
#include "core/mapped_file.h"
#include "ops/quant.h"

namespace qwen3vl {
namespace {

size_t stored_bytes(DType dtype, int64_t rows, int64_t cols) {
  return is_quantized(dtype) ? quant_matrix_bytes(dtype, rows, cols)
                             : static_cast<size_t>(rows * cols) * dtype_size(dtype);
}

std::shared_ptr<uint8_t> allocate(size_t bytes) {
  void* data = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!data) throw std::bad_alloc();
  return std::shared_ptr<uint8_t>(static_cast<uint8_t*>(data), [](uint8_t* p) { std::free(p); });
}

}  // namespace

void read_weight_row(const WeightMatrix& w, int64_t j, float* out) {
  if (is_quantized(w.dtype)) return dequantize_row(w, j, out);
  const size_t size = dtype_size(w.dtype);
  const uint8_t* base = static_cast<const uint8_t*>(w.data);
  if (w.layout == WeightLayout::OutIn) return convert_to_f32(w.dtype, base + j * w.cols * size, out, w.cols);
  for (int64_t k = 0; k < w.cols; ++k) convert_to_f32(w.dtype, base + (k * w.rows + j) * size, out + k, 1);
}

namespace {

// Converts `src` into `dst` (stored_bytes(format, ...) bytes): quantized formats out-major, plain ones in src's
// layout. Rows in pieces over the pool.
void convert_into(const WeightMatrix& src, DType format, uint8_t* dst, ThreadPool* pool) {
  constexpr int64_t kRowsPerTask = 16;
  const int64_t tasks = (src.rows + kRowsPerTask - 1) / kRowsPerTask;
  auto task = [&](int64_t t, int) {
    const int64_t r0 = t * kRowsPerTask, r1 = std::min(src.rows, r0 + kRowsPerTask);
    std::vector<float> rows(static_cast<size_t>((r1 - r0) * src.cols));
    for (int64_t r = r0; r < r1; ++r) read_weight_row(src, r, rows.data() + (r - r0) * src.cols);
    if (is_quantized(format)) return quantize_rows(format, rows.data(), src.rows, src.cols, r0, r1, dst);
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t k = 0; k < src.cols; ++k) {
        const float v = rows[(r - r0) * src.cols + k];
        const uint16_t bits = format == DType::BF16 ? f32_to_bf16(v) : f32_to_f16(v);
        const int64_t index = src.layout == WeightLayout::OutIn ? r * src.cols + k : k * src.rows + r;
        std::memcpy(dst + 2 * index, &bits, 2);
      }
  };
  if (pool) pool->parallel_for(tasks, task);
  else
    for (int64_t t = 0; t < tasks; ++t) task(t, 0);
}

class Converter {
 public:
  Converter(const TensorStore& store, ThreadPool* pool, ConvertedWeights& out) : store_(store), pool_(pool), out_(out) {}

  // One matrix named `name` (for the record) to `format`.
  void matrix(WeightMatrix& w, const std::string& name, DType format) {
    if (w.dtype == format) return;
    check_source(w, name);
    const size_t bytes = stored_bytes(format, w.rows, w.cols);
    std::shared_ptr<uint8_t> buffer = allocate(bytes);
    convert_into(w, format, buffer.get(), pool_);
    release_pages(w.data, static_cast<size_t>(w.rows * w.cols) * dtype_size(w.dtype));
    w = WeightMatrix{format, buffer.get(), w.rows, w.cols, is_quantized(format) ? WeightLayout::OutIn : w.layout};
    record(name, format, {w.rows, w.cols}, buffer, bytes);
  }

  // Fused MoE experts: one buffer holding every expert's matrix in turn.
  void experts(std::vector<WeightMatrix>& slices, const std::string& name, DType format) {
    if (slices.empty() || slices[0].dtype == format) return;
    const WeightMatrix& first = slices[0];
    check_source(first, name);
    const size_t each = stored_bytes(format, first.rows, first.cols);
    std::shared_ptr<uint8_t> buffer = allocate(each * slices.size());
    const bool to_out_major = is_quantized(format);
    for (size_t e = 0; e < slices.size(); ++e) {
      WeightMatrix& w = slices[e];
      convert_into(w, format, buffer.get() + e * each, pool_);
      release_pages(w.data, static_cast<size_t>(w.rows * w.cols) * dtype_size(w.dtype));
      w = WeightMatrix{format, buffer.get() + e * each, w.rows, w.cols, to_out_major ? WeightLayout::OutIn : w.layout};
    }
    // Recorded as stored by the quantize command: [E, out, in] when out-major, else the shipped shape.
    const WeightMatrix& w = slices[0];
    const int64_t experts = static_cast<int64_t>(slices.size());
    record(name, format,
           w.layout == WeightLayout::OutIn ? std::vector<int64_t>{experts, w.rows, w.cols}
                                           : std::vector<int64_t>{experts, w.cols, w.rows},
           buffer, each * slices.size());
  }

 private:
  void check_source(const WeightMatrix& w, const std::string& name) const {
    if (is_quantized(w.dtype))
      throw_error(store_.description(), ": tensor ", name, " is stored ", weight_format_name(w.dtype),
                  "; a quantized checkpoint loads only in its own format (use the shipped checkpoint to convert)");
  }
  void release_pages(const void* data, size_t bytes) const { release_mapped_range(data, bytes); }
  void record(const std::string& name, DType format, std::vector<int64_t> shape, std::shared_ptr<uint8_t> buffer,
              size_t bytes) {
    out_.tensors.push_back(ConvertedTensor{name, format, std::move(shape), buffer.get(), bytes});
    out_.buffers.push_back(std::move(buffer));
    out_.bytes += bytes;
  }

  const TensorStore& store_;
  ThreadPool* pool_;
  ConvertedWeights& out_;
};

}  // namespace

void check_matrix_dtype(const TensorView& view) {
  if (!is_float_dtype(view.dtype) && !is_quantized(view.dtype))
    throw_error(view.file, ": tensor ", view.name, " has dtype ", dtype_name(view.dtype),
                " (a weight matrix must be F32, F16, BF16, or q8 / q4 written by qwen3vl quantize)");
}

WeightMatrix bind_weight_matrix(const TensorView& view, int64_t rows, int64_t cols) {
  check_matrix_dtype(view);
  const uint64_t needed = is_quantized(view.dtype)
                              ? quant_matrix_bytes(view.dtype, rows, cols)
                              : static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols) * dtype_size(view.dtype);
  if (rows <= 0 || cols <= 0 || view.bytes != needed)
    throw_error(view.file, ": tensor ", view.name, " holds ", view.bytes, " bytes but a ", dtype_name(view.dtype),
                " matrix [", rows, ", ", cols, "] needs ", needed);
  return WeightMatrix{view.dtype, view.data, rows, cols};
}

WeightMatrix bind_embedding_table(const TensorView& view, int64_t rows, int64_t cols) {
  if (!is_float_dtype(view.dtype))
    throw_error(view.file, ": tensor ", view.name, " has dtype ", dtype_name(view.dtype),
                " (an embedding table must be F32, F16 or BF16)");
  return bind_weight_matrix(view, rows, cols);
}

WeightVector bind_weight_vector(const TensorView& view, int64_t size) {
  if (!is_float_dtype(view.dtype))
    throw_error(view.file, ": tensor ", view.name, " has dtype ", dtype_name(view.dtype),
                " (norm weights and biases must be F32, F16 or BF16)");
  if (size <= 0 || view.bytes != static_cast<uint64_t>(size) * dtype_size(view.dtype))
    throw_error(view.file, ": tensor ", view.name, " holds ", view.bytes, " bytes, not ", size, " ",
                dtype_name(view.dtype), " values");
  return WeightVector{view.dtype, view.data, size};
}

void convert_text_weights(TextWeights& weights, const TensorStore& store, DType format, ThreadPool* pool,
                          ConvertedWeights& out) {
  Converter convert(store, pool, out);
  for (size_t l = 0; l < weights.layers.size(); ++l) {
    const std::string p = weights.prefix + "layers." + std::to_string(l) + ".";
    TextLayerWeights& layer = weights.layers[l];
    convert.matrix(layer.q_proj, p + "self_attn.q_proj.weight", format);
    convert.matrix(layer.k_proj, p + "self_attn.k_proj.weight", format);
    convert.matrix(layer.v_proj, p + "self_attn.v_proj.weight", format);
    convert.matrix(layer.o_proj, p + "self_attn.o_proj.weight", format);
    if (!layer.moe.empty()) {
      convert.experts(layer.moe.gate_up_proj, p + "mlp.experts.gate_up_proj", format);
      convert.experts(layer.moe.down_proj, p + "mlp.experts.down_proj", format);
      continue;
    }
    convert.matrix(layer.gate_proj, p + "mlp.gate_proj.weight", format);
    convert.matrix(layer.up_proj, p + "mlp.up_proj.weight", format);
    convert.matrix(layer.down_proj, p + "mlp.down_proj.weight", format);
  }
  // The tied head becomes its own copy; embed_tokens stays mapped (its pages are released: rows are read again on
  // demand).
  const DType head_format = format == DType::Q4 ? DType::Q8 : format;
  if (weights.lm_head_tied && weights.lm_head.dtype != head_format) weights.lm_head_tied = false;
  convert.matrix(weights.lm_head, "lm_head.weight", head_format);
}

void convert_vision_weights(VisionWeights& weights, const TensorStore& store, DType format, ThreadPool* pool,
                            ConvertedWeights& out) {
  Converter convert(store, pool, out);
  for (size_t i = 0; i < weights.blocks.size(); ++i) {
    const std::string p = weights.prefix + "blocks." + std::to_string(i) + ".";
    VisionBlockWeights& block = weights.blocks[i];
    convert.matrix(block.qkv.weight, p + "attn.qkv.weight", format);
    convert.matrix(block.proj.weight, p + "attn.proj.weight", format);
    convert.matrix(block.linear_fc1.weight, p + "mlp.linear_fc1.weight", format);
    convert.matrix(block.linear_fc2.weight, p + "mlp.linear_fc2.weight", format);
  }
  auto merger = [&](VisionMergerWeights& m, const std::string& name) {
    convert.matrix(m.linear_fc1.weight, weights.prefix + name + ".linear_fc1.weight", format);
    convert.matrix(m.linear_fc2.weight, weights.prefix + name + ".linear_fc2.weight", format);
  };
  merger(weights.merger, "merger");
  for (size_t k = 0; k < weights.deepstack_merger_list.size(); ++k)
    merger(weights.deepstack_merger_list[k], "deepstack_merger_list." + std::to_string(k));
}

}  // namespace qwen3vl
