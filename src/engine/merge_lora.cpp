#include "engine/merge_lora.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/adapters.h"
#include "engine/output_dir.h"

namespace qwen3vl {
namespace {

namespace fs = std::filesystem;

// The checkpoint's name of a module path in transformers' (>= 4.52) naming (adapters use it whatever the file's).
std::string checkpoint_name(const LoadedModel& model, const std::string& name) {
  const std::string text = "model.language_model.", vision = "model.visual.";
  if (name.compare(0, text.size(), text) == 0) return model.text_weights.prefix + name.substr(text.size());
  if (name.compare(0, vision.size(), vision) == 0) return model.vision_weights.prefix + name.substr(vision.size());
  return name;
}

// A tensor of the output: its values in float while adapters are merged, rounded to `dtype` after each step.
struct MergedTensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<float> values;
  std::vector<float> unmerged;  // the weight before any adapter (DoRA's norm is taken on it)
};

void round_to_dtype(std::vector<float>& values, DType dtype) {
  for (float& v : values) {
    if (dtype == DType::BF16) v = round_to_bf16(v);
    if (dtype == DType::F16) v = f16_to_f32(f32_to_f16(v));
  }
}

// Linear.merge (unsafe): W += delta, rounded to W's dtype. DoRA (merge_unsafe): W = (m / ||W0 + delta||) * (W + delta)
// per output row, the norm on W0, the weight before any adapter (t.unmerged).
void merge_module(MergedTensor& t, const LoraModule& m, float scaling) {
  const int64_t rows = t.shape[0], cols = static_cast<int64_t>(t.values.size()) / rows;
  const std::vector<float> delta = lora_delta_weight(m, rows, cols, scaling);
  if (m.magnitude.empty()) {
    for (size_t e = 0; e < delta.size(); ++e) t.values[e] = t.values[e] + delta[e];
  } else {
    const std::vector<float> factors = dora_scale(m, t.unmerged.data(), delta, rows, cols);
    for (int64_t j = 0; j < rows; ++j) {
      const float factor = factors[j];
      for (int64_t c = 0; c < cols; ++c) {
        float& w = t.values[j * cols + c];
        w = factor * (w + delta[j * cols + c]);
      }
    }
  }
  round_to_dtype(t.values, t.dtype);
}

// config.json with every "dtype" / "torch_dtype" field set to the output dtype.
void rewrite_config_dtype(const fs::path& config_path, DType dtype) {
  nlohmann::ordered_json config = nlohmann::ordered_json::parse(std::ifstream(config_path));
  const std::string name = dtype == DType::BF16 ? "bfloat16" : "float32";
  std::function<void(nlohmann::ordered_json&)> visit = [&](nlohmann::ordered_json& object) {
    for (auto& [key, value] : object.items()) {
      if ((key == "dtype" || key == "torch_dtype") && value.is_string()) value = name;
      if (value.is_object()) visit(value);
    }
  };
  visit(config);
  std::ofstream(config_path) << config.dump(2) << "\n";
}

}  // namespace

void merge_lora(const std::string& base_dir, const std::vector<MergeAdapter>& adapters, const std::string& out_dir,
                const MergeLoraOptions& options) {
  auto report = [&options](const std::string& line) {
    if (options.progress) options.progress(line);
  };
  if (options.dtype && *options.dtype != DType::F32 && *options.dtype != DType::BF16)
    throw_error("merge-lora: --dtype must be bf16 or f32");
  if (adapters.empty()) throw_error("merge-lora: no adapter given (--lora)");
  PartialDir partial(out_dir);
  LoadOptions load;
  load.require_tokenizer = false;
  load.threads = options.threads;
  const auto model = load_model(base_dir, load);
  for (const std::string& name : model->tensors.names()) {
    const TensorView& view = model->tensors.get(name);
    if (view.dtype == DType::Q8 || view.dtype == DType::Q4)
      throw_error(view.file, ": tensor ", name, " is quantized; merge-lora needs the checkpoint's weights as published");
  }

  std::map<std::string, MergedTensor> merged;  // by the checkpoint's tensor name
  auto tensor_for = [&](const std::string& name) -> MergedTensor& {
    auto found = merged.find(name);
    if (found != merged.end()) return found->second;
    const TensorView& view = model->tensors.get(name);
    MergedTensor& t = merged[name];
    t.dtype = options.dtype.value_or(view.dtype);
    t.shape = view.shape;
    t.values = tensor_floats(view);
    round_to_dtype(t.values, t.dtype);
    return t;
  };
  for (const MergeAdapter& spec : adapters) {
    const auto adapter = load_adapter(*model, spec.dir);
    report("merging " + spec.dir + " (" + std::to_string(adapter->modules().size()) + " modules, scale " +
           std::to_string(spec.scale) + ")");
    for (const LoraModule& m : adapter->modules()) {
      const std::string name = checkpoint_name(*model, m.path + ".weight");
      if (name == "lm_head.weight" && !model->tensors.contains(name))
        throw_error(spec.dir, ": the adapter changes lm_head, which this checkpoint ties to embed_tokens; merging "
                    "it would change the embeddings too");
      MergedTensor& t = tensor_for(name);
      if (!m.magnitude.empty() && t.unmerged.empty()) {  // DoRA's norm: on the weight before any adapter
        t.unmerged = tensor_floats(model->tensors.get(name));
        round_to_dtype(t.unmerged, t.dtype);
      }
      merge_module(t, m, static_cast<float>(m.scaling * spec.scale));
    }
    for (const auto& [saved_name, view] : adapter->saved_tensors()) {
      const std::string name = checkpoint_name(*model, saved_name);
      if (!model->tensors.contains(name))
        throw_error(spec.dir, ": the adapter replaces ", saved_name, ", which this checkpoint does not store (a tied "
                    "lm_head?)");
      MergedTensor& t = tensor_for(name);
      t.values = tensor_floats(view);
      round_to_dtype(t.values, t.dtype);
    }
  }

  // Every tensor of the input, in its own shard: merged ones re-encoded, others converted to --dtype or mapped.
  std::map<std::string, std::vector<TensorToWrite>> shards;  // by shard file name
  std::vector<std::unique_ptr<std::vector<uint8_t>>> buffers;
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  uint64_t total_size = 0;
  for (const std::string& name : model->tensors.names()) {
    const TensorView& view = model->tensors.get(name);
    const std::string shard = fs::path(view.file).filename().string();
    weight_map[name] = shard;
    const auto found = merged.find(name);
    const bool convert = options.dtype && is_float_dtype(view.dtype) && view.dtype != *options.dtype;
    if (found == merged.end() && !convert) {
      shards[shard].push_back({name, dtype_name(view.dtype), view.shape, view.data, view.bytes, true});
      total_size += view.bytes;
      continue;
    }
    const DType dtype = found != merged.end() ? found->second.dtype : *options.dtype;
    const std::vector<float> values = found != merged.end() ? found->second.values : tensor_floats(view);
    buffers.push_back(std::make_unique<std::vector<uint8_t>>(encode_floats(values.data(), values.size(), dtype)));
    shards[shard].push_back({name, dtype_name(dtype), view.shape, buffers.back()->data(), buffers.back()->size(), false});
    total_size += buffers.back()->size();
  }
  partial.copy_non_weight_files(base_dir);
  if (options.dtype) rewrite_config_dtype(partial.path() / "config.json", *options.dtype);
  for (const auto& [shard, tensors] : shards) {
    report("writing " + std::to_string(tensors.size()) + " tensors to " + out_dir + "/" + shard);
    write_safetensors((partial.path() / shard).string(), tensors, {{"format", "pt"}});
  }
  if (fs::exists(fs::path(base_dir) / "model.safetensors.index.json")) {
    const nlohmann::ordered_json index = {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}};
    std::ofstream(partial.path() / "model.safetensors.index.json") << index.dump(2) << "\n";
  }
  partial.commit();
  report("done: " + out_dir + " (" + std::to_string(merged.size()) + " tensors changed)");
}

}  // namespace qwen3vl
