// safetensors checkpoints: one file or a sharded set (model.safetensors.index.json), memory-mapped.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}}, then data.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"

namespace qwen3vl {

// A tensor inside a mapped file. `data` stays valid while its TensorStore lives.
struct TensorView {
  std::string name;
  std::string file;  // the file it lives in, for error messages
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;

  int64_t numel() const;
  std::string shape_string() const;  // "[2048, 64]"
};

// One .safetensors file, header parsed and validated.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // throws Error naming the path and tensor
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::string& path() const { return file_.path(); }

 private:
  MappedFile file_;
  std::map<std::string, TensorView> tensors_;
};

// All tensors of a checkpoint directory, looked up by name.
class TensorStore {
 public:
  // Opens DIR/model.safetensors.index.json (sharded) or DIR/model.safetensors.
  static TensorStore open_dir(const std::string& dir);

  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  const TensorView* find(const std::string& name) const;
  const TensorView& get(const std::string& name) const;  // throws Error naming the checkpoint and tensor
  std::vector<std::string> names() const;
  const std::string& description() const { return description_; }  // the index or the single file path

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> index_;
  std::string description_;
};

}  // namespace qwen3vl
