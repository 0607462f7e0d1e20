// safetensors checkpoints: one file or a sharded set (model.safetensors.index.json), memory-mapped.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}}, then data.
// Checkpoints written by `qwen3vl quantize` store each quantized weight as a U8 tensor of its blob's bytes (layout in
// ops/quant.h) and describe it in the header's __metadata__ under the tensor's own name:
//   "NAME": "{\"format\": \"q8\", \"block\": 32, \"layout\": \"tiles16x64\", \"shape\": [rows, cols]}"
// ([experts, rows, cols] for MoE experts). Such a tensor reads back with dtype Q8 / Q4 and that logical shape. The
// layout names the byte order of ops/quant.h; a file with another (or none: written before the tiled layout) is
// refused with a message to quantize again.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "core/quant_layout.h"

namespace qwen3vl {

// A tensor inside a mapped file. `data` stays valid while its TensorStore lives.
struct TensorView {
  std::string name;
  std::string file;  // the file it lives in, for error messages
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // the logical shape (for quantized tensors the matrix, not the stored bytes)
  const uint8_t* data = nullptr;
  uint64_t bytes = 0;          // stored bytes

  int64_t numel() const;
  std::string shape_string() const;  // "[2048, 64]"
};

// The values of an F32, F16 or BF16 tensor as float; throws Error naming the file and tensor for another dtype.
std::vector<float> tensor_floats(const TensorView& view);

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

// Writes a safetensors file: tensors in the given order, 8-byte aligned, and string metadata. Writes to `path`
// directly; callers that must not leave a partial file write to a temporary name and rename it.
struct TensorToWrite {
  std::string name;
  std::string dtype;  // safetensors spelling: "BF16", "F32", "U8", ...
  std::vector<int64_t> shape;
  const void* data = nullptr;
  uint64_t bytes = 0;
  bool mapped = false;  // data lies in a file mapping: its pages are released once written
};
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata);

// All tensors of a checkpoint directory, looked up by name.
class TensorStore {
 public:
  // Opens DIR/model.safetensors.index.json (sharded) or DIR/model.safetensors.
  static TensorStore open_dir(const std::string& dir);

  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  // Drops the pages of a tensor from this process's resident memory (they are read again from the file if touched):
  // after converting a weight at load, its source need not stay resident.
  void release(const TensorView& view) const;
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
