#include "engine/quantize.h"

#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/loaded_model.h"
#include "engine/output_dir.h"
#include "ops/quant.h"

namespace qwen3vl {
namespace {

void report(const QuantizeOptions& options, const std::string& line) {
  if (options.progress) options.progress(line);
}

}  // namespace

void quantize_checkpoint(const std::string& in_dir, const std::string& out_dir, const QuantizeOptions& options) {
  if (!is_quantized(options.weight_format))
    throw_error("quantize: --format must be q8 or q4, not ", weight_format_name(options.weight_format));
  PartialDir partial(out_dir);

  LoadOptions load;
  load.require_tokenizer = false;
  load.threads = options.threads;
  load.weight_format = options.weight_format;
  load.vision_format = options.vision_format;
  report(options, std::string("converting ") + in_dir + " to " + weight_format_name(options.weight_format) +
                      (options.vision_format ? std::string(", vision ") + weight_format_name(*options.vision_format)
                                             : std::string()));
  const auto model = load_model(in_dir, load);
  report(options, "converted " + std::to_string(model->converted.tensors.size()) + " tensors (" +
                      std::to_string(model->converted.bytes >> 20) + " MiB)");

  // Every tensor of the input, the converted ones replaced; converted tensors the input lacks (a tied lm_head) added.
  std::map<std::string, const ConvertedTensor*> converted;
  for (const ConvertedTensor& t : model->converted.tensors) converted[t.name] = &t;
  std::vector<TensorToWrite> tensors;
  std::map<std::string, std::string> metadata;
  auto add_converted = [&](const ConvertedTensor& t) {
    TensorToWrite w{t.name, is_quantized(t.dtype) ? "U8" : dtype_name(t.dtype), t.shape, t.data, t.bytes, false};
    if (is_quantized(t.dtype)) {
      w.shape = {static_cast<int64_t>(t.bytes)};
      metadata[t.name] =
          nlohmann::json{{"format", weight_format_name(t.dtype)}, {"block", kQuantBlock}, {"layout", kQuantLayoutName},
                         {"shape", t.shape}}.dump();
    }
    tensors.push_back(w);
  };
  for (const std::string& name : model->tensors.names()) {
    auto found = converted.find(name);
    if (found != converted.end()) {
      add_converted(*found->second);
      converted.erase(found);
      continue;
    }
    const TensorView& view = model->tensors.get(name);
    tensors.push_back(TensorToWrite{name, dtype_name(view.dtype), view.shape, view.data, view.bytes, true});
  }
  for (const auto& [name, t] : converted) add_converted(*t);
  metadata["format"] = "pt";
  metadata["qwen3vl.weight_format"] = weight_format_name(options.weight_format);
  if (options.vision_format) metadata["qwen3vl.vision_format"] = weight_format_name(*options.vision_format);

  partial.copy_non_weight_files(in_dir);
  report(options, "writing " + std::to_string(tensors.size()) + " tensors to " + out_dir + "/model.safetensors");
  write_safetensors((partial.path() / "model.safetensors").string(), tensors, metadata);
  partial.commit();
  report(options, "done: " + out_dir);
}

}  // namespace qwen3vl
