#include "engine/quantize.h"

#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/loaded_model.h"
#include "ops/quant.h"

namespace qwen3vl {
namespace {

namespace fs = std::filesystem;

void report(const QuantizeOptions& options, const std::string& line) {
  if (options.progress) options.progress(line);
}

// Removes the temporary directory unless the run completed.
struct TemporaryDir {
  fs::path path;
  bool keep = false;
  ~TemporaryDir() {
    if (keep) return;
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

}  // namespace

void quantize_checkpoint(const std::string& in_dir, const std::string& out_dir, const QuantizeOptions& options) {
  if (!is_quantized(options.weight_format))
    throw_error("quantize: --format must be q8 or q4, not ", weight_format_name(options.weight_format));
  const fs::path out = fs::path(out_dir).lexically_normal();
  if (fs::exists(out)) throw_error(out_dir, ": already exists (quantize writes a new directory)");

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

  TemporaryDir tmp{out.parent_path() / (out.filename().string() + ".partial-" + std::to_string(::getpid()))};
  fs::create_directories(tmp.path);
  for (const fs::directory_entry& entry : fs::directory_iterator(in_dir)) {
    const std::string file = entry.path().filename().string();
    if (!entry.is_regular_file() || entry.path().extension() == ".safetensors" ||
        file == "model.safetensors.index.json")
      continue;
    fs::copy_file(entry.path(), tmp.path / file);
  }
  report(options, "writing " + std::to_string(tensors.size()) + " tensors to " + out_dir + "/model.safetensors");
  write_safetensors((tmp.path / "model.safetensors").string(), tensors, metadata);
  std::error_code error;
  fs::rename(tmp.path, out, error);
  if (error) throw_error(out_dir, ": cannot rename ", tmp.path.string(), " to it: ", error.message());
  tmp.keep = true;
  report(options, "done: " + out_dir);
}

}  // namespace qwen3vl
