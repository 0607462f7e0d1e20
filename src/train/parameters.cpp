#include "train/parameters.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "core/error.h"
#include "model/lora_adapter.h"
#include "model/weight_convert.h"

namespace qwen3vl {
namespace {

uint64_t fnv1a64(const std::string& text) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

// torch.nn.init.kaiming_uniform_(a=sqrt(5)) on a [r, fan_in] weight: gain = sqrt(2 / (1 + a^2)),
// bound = sqrt(3) * gain / sqrt(fan_in) (torch/nn/init.py), in double as Python computes it.
double kaiming_bound(int64_t fan_in) {
  const double gain = std::sqrt(2.0 / (1.0 + 5.0));
  return std::sqrt(3.0) * (gain / std::sqrt(static_cast<double>(fan_in)));
}

void fill_uniform(float* out, int64_t count, double bound, uint64_t seed, const std::string& module) {
  const uint64_t path = fnv1a64(module);
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(path),
                    static_cast<uint32_t>(path >> 32)};
  std::mt19937_64 generator(seq);
  for (int64_t i = 0; i < count; ++i) {
    const double u = static_cast<double>(generator() >> 11) * 0x1.0p-53;
    out[i] = static_cast<float>(-bound + 2.0 * bound * u);
  }
}

void require_float(const ModelTensor& t, DType dtype) {
  if (!is_float_dtype(dtype))
    throw_error("tensor ", t.name, " is stored as ", dtype_name(dtype), ": a quantized weight cannot train fully "
                "(load the checkpoint as published, or adapt it with LoRA)");
}

}  // namespace

ParameterSet::ParameterSet(const ModelConfig& config, const TextWeights& text, const VisionWeights& vision,
                           ModuleSelection selection, const LoraInit& init)
    : selection_(std::move(selection)), text_(text), vision_(vision) {
  const std::vector<ModelTensor> tensors = model_tensors(config, text_, vision_, &text_grads_, &vision_grads_);
  int64_t total = 0;
  for (const SelectedParameter& s : selection_.parameters) {
    if (s.tensor >= tensors.size() || tensors[s.tensor].module != s.module)
      throw_error("the module selection was made for another checkpoint (", s.name, ")");
    total += s.numel();
  }
  values_.assign(static_cast<size_t>(total), 0.f);
  grads_.assign(static_cast<size_t>(total), 0.f);
  int64_t offset = 0;
  for (const SelectedParameter& s : selection_.parameters) {
    Parameter p;
    p.name = s.name;
    p.module = s.module;
    p.kind = s.kind;
    p.group = s.group;
    p.weight_decay = s.weight_decay;
    p.shape = s.shape;
    p.numel = s.numel();
    p.value = values_.data() + offset;
    p.grad = grads_.data() + offset;
    p.dtype = s.kind == ParamKind::Full ? tensors[s.tensor].dtype : DType::F32;
    offset += p.numel;
    if (p.kind == ParamKind::Full) bind_full(p, tensors[s.tensor]);
    parameters_.push_back(std::move(p));
  }
  lora_.resize(selection_.lora_targets.size());
  for (size_t i = 0; i < lora_.size(); ++i) bind_lora(i, tensors);
  if (text_.lm_head_tied) {  // lm_head.weight is embed_tokens.weight: the same master and gradient
    text_.lm_head.dtype = text_.embed_tokens.dtype;
    text_.lm_head.data = text_.embed_tokens.data;
    text_grads_.lm_head.weight = text_grads_.embed_tokens;
  }
  if (init.adapter_dir.empty()) {
    init_lora(init.seed);
  } else {
    load_adapter(init.adapter_dir, text, vision);
  }
  refresh();
}

ParameterSet::ParameterSet(const LoadedModel& model, ModuleSelection selection, const LoraInit& init)
    : ParameterSet(model.config, model.text_weights, model.vision_weights, std::move(selection), init) {}

// The master starts from the view's values and the view is pointed at it.
void ParameterSet::bind_full(const Parameter& p, const ModelTensor& t) {
  if (t.matrix) {
    require_float(t, t.matrix->dtype);
    convert_to_f32(t.matrix->dtype, t.matrix->data, p.value, static_cast<size_t>(p.numel));
    t.matrix->dtype = DType::F32;
    t.matrix->data = p.value;
  } else if (t.vector) {
    require_float(t, t.vector->dtype);
    convert_to_f32(t.vector->dtype, t.vector->data, p.value, static_cast<size_t>(p.numel));
    *t.vector = WeightVector{DType::F32, p.value, t.vector->size};
  } else {
    // Fused experts: each expert's slice keeps its layout inside the master, so per-expert views and gradients
    // lie as the checkpoint's.
    int64_t offset = 0;
    for (size_t e = 0; e < t.experts->size(); ++e) {
      WeightMatrix& slice = (*t.experts)[e];
      require_float(t, slice.dtype);
      const int64_t count = slice.rows * slice.cols;
      convert_to_f32(slice.dtype, slice.data, p.value + offset, static_cast<size_t>(count));
      slice.dtype = DType::F32;
      slice.data = p.value + offset;
      if (t.expert_grads) (*t.expert_grads)[e].weight = p.grad + offset;
      offset += count;
    }
  }
  if (t.grad) *t.grad = p.grad;
}

void ParameterSet::bind_lora(size_t target_index, const std::vector<ModelTensor>& tensors) {
  const LoraTarget& target = selection_.lora_targets[target_index];
  const ModelTensor& t = tensors[target.tensor];
  BoundLora& b = lora_[target_index];
  b.base = t.matrix;
  for (const Parameter& p : parameters_) {
    if (p.module != target.module) continue;
    if (p.kind == ParamKind::LoraA) {
      b.lora_A = p.value;
      b.term.lora_A = {DType::F32, p.value, target.rank, t.matrix->cols};
      b.grad_A = p.grad;
    } else if (p.kind == ParamKind::LoraB) {
      b.lora_B = p.value;
      b.term.lora_B = {DType::F32, p.value, t.matrix->rows, target.rank};
      b.grad_B = p.grad;
    } else if (p.kind == ParamKind::LoraMagnitude) {
      b.magnitude = p.value;
      b.grad_magnitude = p.grad;
      b.dora_scale.assign(static_cast<size_t>(t.matrix->rows), 1.f);
      b.dora_norm.assign(static_cast<size_t>(t.matrix->rows), 1.f);
      b.term.dora_scale = b.dora_scale.data();
      b.term.dora_norm = b.dora_norm.data();
    }
  }
  b.term.scaling = static_cast<float>(target.scaling);  // torch multiplies a float32 tensor by it as float32
  t.matrix->lora = {&b.term, 1};
  t.linear_grads->lora_A = &b.grad_A;
  t.linear_grads->lora_B = &b.grad_B;
  if (b.magnitude) t.linear_grads->magnitude = &b.grad_magnitude;
}

void ParameterSet::init_lora(uint64_t seed) {
  for (size_t i = 0; i < lora_.size(); ++i) {
    BoundLora& b = lora_[i];
    const WeightMatrix& a = b.term.lora_A;
    fill_uniform(b.lora_A, a.rows * a.cols, kaiming_bound(a.cols), seed, selection_.lora_targets[i].module);
    if (!b.magnitude) continue;
    std::vector<float> row(static_cast<size_t>(b.base->cols));
    for (int64_t j = 0; j < b.base->rows; ++j) {  // B = 0: the norm of the base row
      read_weight_row(*b.base, j, row.data());
      b.magnitude[j] = torch_row_norm(row.data(), b.base->cols);
    }
  }
}

void ParameterSet::load_adapter(const std::string& dir, const TextWeights& base_text,
                                const VisionWeights& base_vision) {
  const auto adapter = LoraAdapter::load(dir, base_text, &base_vision);
  std::map<std::string, size_t> target_of;
  for (size_t i = 0; i < selection_.lora_targets.size(); ++i) target_of[selection_.lora_targets[i].module] = i;
  std::vector<bool> seen(lora_.size(), false);
  for (const LoraModule& m : adapter->modules()) {
    const auto found = target_of.find(m.path);
    if (found == target_of.end()) throw_error(dir, ": the adapter adapts ", m.path, ", which this run does not");
    const LoraTarget& target = selection_.lora_targets[found->second];
    BoundLora& b = lora_[found->second];
    if (m.rank != target.rank || std::abs(m.scaling - target.scaling) > 1e-12 * std::abs(target.scaling))
      throw_error(dir, ": ", m.path, " has rank ", m.rank, " and scaling ", m.scaling, " but this run uses rank ",
                  target.rank, " and scaling ", target.scaling);
    if (b.magnitude && m.magnitude.empty())
      throw_error(dir, ": ", m.path, " has no lora_magnitude_vector but this run trains DoRA");
    if (!b.magnitude && !m.magnitude.empty())
      throw_error(dir, ": ", m.path, " has a lora_magnitude_vector but this run trains plain LoRA");
    std::copy(m.lora_A.begin(), m.lora_A.end(), b.lora_A);
    std::copy(m.lora_B.begin(), m.lora_B.end(), b.lora_B);
    std::copy(m.magnitude.begin(), m.magnitude.end(), b.magnitude);
    seen[found->second] = true;
  }
  for (size_t i = 0; i < seen.size(); ++i)
    if (!seen[i]) throw_error(dir, ": the adapter has no LoRA factors for ", selection_.lora_targets[i].module);
  for (const auto& [name, view] : adapter->saved_tensors()) {
    const Parameter* p = find(name);
    if (!p || p->kind != ParamKind::Full)
      throw_error(dir, ": the adapter replaces ", name, ", which this run does not train fully");
    const std::vector<float> values = tensor_floats(view);
    std::copy(values.begin(), values.end(), p->value);
  }
}

const Parameter* ParameterSet::find(const std::string& name) const {
  for (const Parameter& p : parameters_)
    if (p.name == name) return &p;
  return nullptr;
}

void ParameterSet::zero_grad() { std::fill(grads_.begin(), grads_.end(), 0.f); }

// DoraLinearLayer.forward's norm, as AdaptedWeights computes it for inference (lora_adapter.cpp): the base row as
// float plus lora_delta_weight's row (B A accumulated with fused multiply-adds over r, then times the scaling),
// through torch_row_norm; dora_scale = magnitude / norm.
void ParameterSet::refresh() {
  for (BoundLora& b : lora_) {
    if (!b.magnitude) continue;
    const int64_t rows = b.base->rows, cols = b.base->cols, r = b.term.lora_A.rows;
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t j = 0; j < rows; ++j) {
      read_weight_row(*b.base, j, row.data());
      for (int64_t c = 0; c < cols; ++c) {
        float sum = 0.f;
        for (int64_t k = 0; k < r; ++k) sum = std::fma(b.lora_B[j * r + k], b.lora_A[k * cols + c], sum);
        row[c] = row[c] + sum * b.term.scaling;
      }
      b.dora_norm[j] = torch_row_norm(row.data(), cols);
      b.dora_scale[j] = b.magnitude[j] / b.dora_norm[j];
    }
  }
}

}  // namespace qwen3vl
