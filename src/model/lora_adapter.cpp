#include "model/lora_adapter.h"

#include <cmath>
#include <sys/stat.h>

#include "core/error.h"
#include "model/weight_convert.h"

namespace qwen3vl {
namespace {

// A named tensor of the checkpoint an adapter can reach: an adaptable linear (with its bias), or a tensor it may
// replace whole.
struct WeightSlot {
  WeightMatrix* matrix = nullptr;
  WeightVector* vector = nullptr;
  WeightVector* bias = nullptr;  // a linear's bias, when it has one
  bool linear = false;           // LoRA may target it
  bool vision = false;
};

// Keyed by HF tensor name (transformers >= 4.52 paths).
using SlotTable = std::map<std::string, WeightSlot>;

class SlotTableBuilder {
 public:
  explicit SlotTableBuilder(SlotTable& table) : table_(table) {}
  void linear(const std::string& module, WeightMatrix& weight, WeightVector* bias, bool vision) {
    table_[module + ".weight"] = WeightSlot{&weight, nullptr, bias, true, vision};
    if (bias) table_[module + ".bias"] = WeightSlot{nullptr, bias, nullptr, false, vision};
  }
  void matrix(const std::string& name, WeightMatrix& weight, bool vision) {
    table_[name] = WeightSlot{&weight, nullptr, nullptr, false, vision};
  }
  void vector(const std::string& name, WeightVector& weight, bool vision) {
    table_[name] = WeightSlot{nullptr, &weight, nullptr, false, vision};
  }
  void layer_norm(const std::string& module, VisionLayerNorm& norm) {
    vector(module + ".weight", norm.weight, true);
    vector(module + ".bias", norm.bias, true);
  }
  void vision_linear(const std::string& module, VisionLinear& linear_weights) {
    linear(module, linear_weights.weight, &linear_weights.bias, true);
  }
  void merger(const std::string& module, VisionMergerWeights& merger_weights) {
    layer_norm(module + ".norm", merger_weights.norm);
    vision_linear(module + ".linear_fc1", merger_weights.linear_fc1);
    vision_linear(module + ".linear_fc2", merger_weights.linear_fc2);
  }

 private:
  SlotTable& table_;
};

SlotTable slot_table(TextWeights& text, VisionWeights* vision) {
  SlotTable table;
  SlotTableBuilder add(table);
  const std::string lm = "model.language_model.";
  add.matrix(lm + "embed_tokens.weight", text.embed_tokens, false);
  add.vector(lm + "norm.weight", text.norm, false);
  add.linear("lm_head", text.lm_head, nullptr, false);
  for (size_t l = 0; l < text.layers.size(); ++l) {
    TextLayerWeights& layer = text.layers[l];
    const std::string p = lm + "layers." + std::to_string(l) + ".";
    add.vector(p + "input_layernorm.weight", layer.input_layernorm, false);
    add.vector(p + "post_attention_layernorm.weight", layer.post_attention_layernorm, false);
    add.vector(p + "self_attn.q_norm.weight", layer.q_norm, false);
    add.vector(p + "self_attn.k_norm.weight", layer.k_norm, false);
    add.linear(p + "self_attn.q_proj", layer.q_proj, nullptr, false);
    add.linear(p + "self_attn.k_proj", layer.k_proj, nullptr, false);
    add.linear(p + "self_attn.v_proj", layer.v_proj, nullptr, false);
    add.linear(p + "self_attn.o_proj", layer.o_proj, nullptr, false);
    if (layer.moe.empty()) {
      add.linear(p + "mlp.gate_proj", layer.gate_proj, nullptr, false);
      add.linear(p + "mlp.up_proj", layer.up_proj, nullptr, false);
      add.linear(p + "mlp.down_proj", layer.down_proj, nullptr, false);
    } else {
      add.linear(p + "mlp.gate", layer.moe.gate, nullptr, false);  // the router; the fused experts are not modules
    }
  }
  if (!vision) return table;
  const std::string v = "model.visual.";
  add.vision_linear(v + "patch_embed.proj", vision->patch_embed);
  add.matrix(v + "pos_embed.weight", vision->pos_embed, true);
  for (size_t i = 0; i < vision->blocks.size(); ++i) {
    VisionBlockWeights& block = vision->blocks[i];
    const std::string p = v + "blocks." + std::to_string(i) + ".";
    add.layer_norm(p + "norm1", block.norm1);
    add.layer_norm(p + "norm2", block.norm2);
    add.vision_linear(p + "attn.qkv", block.qkv);
    add.vision_linear(p + "attn.proj", block.proj);
    add.vision_linear(p + "mlp.linear_fc1", block.linear_fc1);
    add.vision_linear(p + "mlp.linear_fc2", block.linear_fc2);
  }
  add.merger(v + "merger", vision->merger);
  for (size_t k = 0; k < vision->deepstack_merger_list.size(); ++k)
    add.merger(v + "deepstack_merger_list." + std::to_string(k), vision->deepstack_merger_list[k]);
  return table;
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  return count;
}

// Transformers' paths of Qwen2/2.5-VL-era checkpoints (and of adapters made on them) name the same modules.
std::string canonical_path(std::string path) {
  auto starts = [&path](const std::string& prefix) { return path.compare(0, prefix.size(), prefix) == 0; };
  if (starts("visual.")) return "model." + path;
  if (starts("model.") && !starts("model.language_model.") && !starts("model.visual."))
    return "model.language_model." + path.substr(6);
  return path;
}

// Drops PEFT's wrapper names from a saved key: a tuner layer's "base_layer", a modules_to_save wrapper's
// "modules_to_save" / "original_module" (the adapter name itself is already stripped on save).
std::string strip_wrappers(const std::string& name) {
  std::string out;
  size_t start = 0;
  while (start <= name.size()) {
    const size_t dot = name.find('.', start);
    const std::string part = name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part != "base_layer" && part != "modules_to_save" && part != "original_module")
      out += (out.empty() ? "" : ".") + part;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return out;
}

// A PEFT key: "base_model.model." + module path + ".lora_A.weight" / ".lora_B.weight" / ".lora_B.bias" /
// ".lora_magnitude_vector" (DoRA), or a whole tensor (modules_to_save, biases) under its module path.
struct AdapterKey {
  std::string path;  // module path, or the HF tensor name of a whole tensor
  std::string part;  // "lora_A", "lora_B", "lora_B.bias", "magnitude", or "" for a whole tensor
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

AdapterKey parse_key(const std::string& file, const std::string& key) {
  const std::string prefix = "base_model.model.";
  if (key.compare(0, prefix.size(), prefix) != 0)
    throw_error(file, ": tensor ", key, " does not start with ", prefix, " (not a PEFT adapter file?)");
  const std::string rest = key.substr(prefix.size());
  for (const auto& [suffix, part] : std::vector<std::pair<std::string, std::string>>{
           {".lora_A.weight", "lora_A"},
           {".lora_B.weight", "lora_B"},
           {".lora_B.bias", "lora_B.bias"},
           {".lora_magnitude_vector.weight", "magnitude"},
           {".lora_magnitude_vector", "magnitude"}})
    if (ends_with(rest, suffix))
      return {canonical_path(strip_wrappers(rest.substr(0, rest.size() - suffix.size()))), part};
  return {canonical_path(strip_wrappers(rest)), ""};
}

bool is_regular_file(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

std::string made_for(const AdapterConfig& config) {
  return config.base_model_name_or_path.empty() ? ""
                                                : " (the adapter was made for " + config.base_model_name_or_path + ")";
}

// Checks one module's tensors against the weight it adapts and PEFT's config.
void check_module(const std::string& file, const AdapterConfig& config, const LoraModule& m, const WeightMatrix& w,
                  const std::vector<int64_t>& a_shape, const std::vector<int64_t>& b_shape) {
  const std::string where = file + ": " + m.path;
  if (m.lora_A.empty() || m.lora_B.empty())
    throw_error(where, " has ", m.lora_A.empty() ? "no lora_A" : "no lora_B", " weight");
  if (a_shape.size() < 2 || b_shape.size() < 2)
    throw_error(where, ": lora_A ", a_shape.size(), "-D and lora_B ", b_shape.size(), "-D, expected matrices");
  const int64_t r = a_shape[0];
  if (numel(a_shape) != r * w.cols)
    throw_error(where, ".lora_A.weight takes ", numel(a_shape) / std::max<int64_t>(r, 1), " inputs but the checkpoint's ",
                "weight takes ", w.cols, made_for(config));
  if (b_shape[0] != w.rows)
    throw_error(where, ".lora_B.weight has ", b_shape[0], " outputs but the checkpoint's weight has ", w.rows,
                made_for(config));
  if (numel(b_shape) != w.rows * r)
    throw_error(where, ": rank mismatch, lora_A has rank ", r, " but lora_B ", numel(b_shape) / w.rows);
  const int64_t configured = adapter_rank(config, m.path);
  if (configured != r)
    throw_error(where, " has rank ", r, " but ", config.file, " says r = ", configured);
  if (config.use_dora != !m.magnitude.empty())
    throw_error(where, config.use_dora ? " has no lora_magnitude_vector although use_dora is true"
                                       : " has a lora_magnitude_vector although use_dora is false");
  if (!m.magnitude.empty() && static_cast<int64_t>(m.magnitude.size()) != w.rows)
    throw_error(where, ".lora_magnitude_vector has ", m.magnitude.size(), " values for ", w.rows, " outputs");
}

void check_whole_tensor(const AdapterConfig& config, const TensorView& view, const std::string& name,
                        const WeightSlot& slot) {
  const int64_t rows = slot.matrix ? slot.matrix->rows : slot.vector->size;
  const int64_t size = slot.matrix ? slot.matrix->rows * slot.matrix->cols : slot.vector->size;
  if (view.shape.empty() || view.shape[0] != rows || view.numel() != size)
    throw_error(view.file, ": tensor ", view.name, " has shape ", view.shape_string(), " but the checkpoint's ",
                name, " holds ", size, " values", made_for(config));
  if (!is_float_dtype(view.dtype))
    throw_error(view.file, ": tensor ", view.name, " has dtype ", dtype_name(view.dtype),
                "; expected F32, BF16 or F16");
}

// DoraLinearLayer.forward's mag_norm_scale for weight w: its rows as float (the weight cast to the fp32 adapter
// dtype), then the norm of W + scaling * lora_weight, which is W + get_delta_weight's delta to the bit (the
// product commutes, and lora_B(lora_A(eye)) accumulates like B @ A).
std::vector<float> dora_scale(const WeightMatrix& w, const LoraModule& m, float scaling) {
  std::vector<float> weight(static_cast<size_t>(w.rows * w.cols));
  for (int64_t j = 0; j < w.rows; ++j) read_weight_row(w, j, weight.data() + j * w.cols);
  return dora_scale(m, weight.data(), lora_delta_weight(m, w.rows, w.cols, scaling), w.rows, w.cols);
}

}  // namespace

std::vector<float> lora_delta_weight(const LoraModule& m, int64_t rows, int64_t cols, float scaling) {
  std::vector<float> delta(static_cast<size_t>(rows * cols));
  for (int64_t j = 0; j < rows; ++j)
    for (int64_t c = 0; c < cols; ++c) {
      float sum = 0.f;
      for (int64_t k = 0; k < m.rank; ++k) sum = std::fma(m.lora_B[j * m.rank + k], m.lora_A[k * cols + c], sum);
      delta[j * cols + c] = sum * scaling;
    }
  return delta;
}

std::vector<float> dora_scale(const LoraModule& m, const float* weight, const std::vector<float>& delta, int64_t rows,
                              int64_t cols) {
  std::vector<float> scale(static_cast<size_t>(rows)), row(static_cast<size_t>(cols));
  for (int64_t j = 0; j < rows; ++j) {
    for (int64_t c = 0; c < cols; ++c) row[c] = weight[j * cols + c] + delta[j * cols + c];
    scale[j] = m.magnitude[j] / torch_row_norm(row.data(), cols);
  }
  return scale;
}

float torch_row_norm(const float* row, int64_t count) {
  float lanes[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  for (int64_t c = 0; c < count; ++c) {
    const float square = row[c] * row[c];
    lanes[c % 8] = lanes[c % 8] + square;
  }
  float sum = 0.f;
  for (float lane : lanes) sum = sum + lane;
  return std::sqrt(sum);
}

std::shared_ptr<const LoraAdapter> LoraAdapter::load(const std::string& dir, const TextWeights& text,
                                                     const VisionWeights* vision) {
  std::shared_ptr<LoraAdapter> adapter(new LoraAdapter);
  adapter->dir_ = dir;
  adapter->config_ = read_adapter_config(dir);
  const AdapterConfig& config = adapter->config_;
  const std::string path = dir + "/adapter_model.safetensors";
  if (!is_regular_file(path)) {
    if (is_regular_file(dir + "/adapter_model.bin"))
      throw_error(path, ": missing; adapter_model.bin (a PyTorch pickle) is not read, save the adapter with "
                  "safe_serialization=True (PEFT's default)");
    throw_error(path, ": missing");
  }
  adapter->file_ = std::make_shared<SafetensorsFile>(path);

  TextWeights text_copy = text;
  VisionWeights vision_copy = vision ? *vision : VisionWeights{};
  const SlotTable table = slot_table(text_copy, vision ? &vision_copy : nullptr);
  std::map<std::string, LoraModule> modules;
  std::map<std::string, std::vector<int64_t>> a_shapes, b_shapes;
  for (const auto& [name, view] : adapter->file_->tensors()) {
    const AdapterKey key = parse_key(path, name);
    if (key.part.empty()) {
      const auto slot = table.find(key.path);
      if (slot == table.end())
        throw_error(path, ": tensor ", name, " replaces ", key.path, ", which this checkpoint does not have",
                    made_for(config));
      check_whole_tensor(config, view, key.path, slot->second);
      adapter->saved_[key.path] = view;
      adapter->touches_vision_ |= slot->second.vision;
      continue;
    }
    const auto slot = table.find(key.path + ".weight");
    if (slot == table.end() || !slot->second.linear)
      throw_error(path, ": tensor ", name, " targets ", key.path, ", which is not a linear layer of this checkpoint",
                  made_for(config));
    if (key.part == "lora_B.bias")
      throw_error(path, ": tensor ", name, ": lora_bias (a bias on lora_B) is not supported");
    LoraModule& module = modules[key.path];
    module.path = key.path;
    adapter->touches_vision_ |= slot->second.vision;
    if (key.part == "lora_A") {
      module.lora_A = tensor_floats(view);
      a_shapes[key.path] = view.shape;
    } else if (key.part == "lora_B") {
      module.lora_B = tensor_floats(view);
      b_shapes[key.path] = view.shape;
    } else {
      module.magnitude = tensor_floats(view);
    }
  }
  for (auto& [module_path, module] : modules) {
    const WeightMatrix& w = *table.at(module_path + ".weight").matrix;
    check_module(path, config, module, w, a_shapes[module_path], b_shapes[module_path]);
    module.rank = a_shapes[module_path][0];
    module.scaling = adapter_scaling(config, module_path);
    adapter->modules_.push_back(std::move(module));
  }
  if (adapter->modules_.empty() && adapter->saved_.empty()) throw_error(path, ": holds no adapter tensors");
  return adapter;
}

AdaptedWeights::AdaptedWeights(const TextWeights& text, const VisionWeights* vision,
                               std::vector<ActiveAdapter> adapters)
    : text_(text), has_vision_(vision != nullptr), adapters_(std::move(adapters)) {
  if (vision) vision_ = *vision;
  SlotTable table = slot_table(text_, has_vision_ ? &vision_ : nullptr);
  auto slot_of = [&table](const LoraAdapter& adapter, const std::string& name) -> WeightSlot& {
    const auto slot = table.find(name);
    if (slot == table.end())
      throw_error(adapter.dir(), ": the adapter was loaded for another checkpoint (it has ", name, ")");
    return slot->second;
  };
  std::map<std::string, std::vector<LoraTerm>> terms;  // by weight name, in adapter order
  for (const ActiveAdapter& active : adapters_) {
    const LoraAdapter& adapter = *active.adapter;
    for (const LoraModule& m : adapter.modules()) {
      const std::string name = m.path + ".weight";
      const WeightMatrix& w = *slot_of(adapter, name).matrix;
      if (static_cast<int64_t>(m.lora_A.size()) != m.rank * w.cols || static_cast<int64_t>(m.lora_B.size()) != w.rows * m.rank)
        throw_error(adapter.dir(), ": the adapter was loaded for another checkpoint (", m.path, " does not fit)");
      LoraTerm term;
      term.lora_A = {DType::F32, m.lora_A.data(), m.rank, w.cols};
      term.lora_B = {DType::F32, m.lora_B.data(), w.rows, m.rank};
      term.scaling = static_cast<float>(m.scaling * active.scale);  // used as a float32 scalar by torch
      if (!m.magnitude.empty()) {
        dora_scales_.push_back(dora_scale(w, m, term.scaling));
        term.dora_scale = dora_scales_.back().data();
      }
      terms[name].push_back(term);
    }
    for (const auto& [name, view] : adapter.saved_tensors()) {
      WeightSlot& slot = slot_of(adapter, name);
      if (slot.matrix) {
        slot.matrix->dtype = view.dtype;
        slot.matrix->data = view.data;
        slot.matrix->layout = WeightLayout::OutIn;
      } else {
        *slot.vector = WeightVector{view.dtype, view.data, slot.vector->size};
      }
    }
  }
  for (auto& [name, list] : terms) {
    terms_.push_back(std::move(list));
    table.at(name).matrix->lora = {terms_.back().data(), static_cast<int>(terms_.back().size())};
  }
}

bool AdaptedWeights::touches_vision() const {
  for (const ActiveAdapter& active : adapters_)
    if (active.adapter->touches_vision()) return true;
  return false;
}

}  // namespace qwen3vl
