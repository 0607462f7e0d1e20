// A checkpoint directory written whole or not at all: built in a temporary sibling folder that is removed unless
// the write completed, then renamed into place (quantize, merge-lora).
#pragma once

#include <filesystem>
#include <string>

namespace qwen3vl {

class PartialDir {
 public:
  // Throws Error when `out_dir` exists already (the writers make new directories only).
  explicit PartialDir(const std::string& out_dir);
  ~PartialDir();
  PartialDir(const PartialDir&) = delete;
  PartialDir& operator=(const PartialDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Copies every regular file of `dir` except weights (*.safetensors, model.safetensors.index.json) into the folder.
  void copy_non_weight_files(const std::string& dir) const;
  // Renames the folder to the output directory; throws Error naming it on failure.
  void commit();

 private:
  std::filesystem::path out_;
  std::filesystem::path path_;
  bool committed_ = false;
};

}  // namespace qwen3vl
