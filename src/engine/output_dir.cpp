#include "engine/output_dir.h"

#include <unistd.h>

#include "core/error.h"

namespace qwen3vl {

namespace fs = std::filesystem;

PartialDir::PartialDir(const std::string& out_dir) : out_(fs::path(out_dir).lexically_normal()) {
  if (fs::exists(out_)) throw_error(out_dir, ": already exists (the output must be a new directory)");
  path_ = out_.parent_path() / (out_.filename().string() + ".partial-" + std::to_string(::getpid()));
  fs::create_directories(path_);
}

PartialDir::~PartialDir() {
  if (committed_) return;
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

void PartialDir::copy_non_weight_files(const std::string& dir) const {
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::string file = entry.path().filename().string();
    if (!entry.is_regular_file() || entry.path().extension() == ".safetensors" ||
        file == "model.safetensors.index.json")
      continue;
    fs::copy_file(entry.path(), path_ / file);
  }
}

void PartialDir::commit() {
  std::error_code error;
  fs::rename(path_, out_, error);
  if (error) throw_error(out_.string(), ": cannot rename ", path_.string(), " to it: ", error.message());
  committed_ = true;
}

}  // namespace qwen3vl
