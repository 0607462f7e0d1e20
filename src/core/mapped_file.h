// A read-only memory map of a whole file. Weights stay in the page cache and are shared, never copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace qwen3vl {

// Drops the whole pages inside [data, data + bytes) of a read-only file mapping from the process's resident memory;
// touching them again reads them back from the file.
void release_mapped_range(const void* data, size_t bytes);

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws Error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace qwen3vl
