// Helpers shared by the fuzz targets: reading structured values out of the fuzzer's bytes, temporary files for the
// loaders that take paths, and invariant checks that abort (so libFuzzer and the replay tests both see a crash).
// A target lets the error types its parser documents (qwen3vl::Error, server::ApiError) end an input quietly; any
// other exception escapes and counts as a crash.
#pragma once

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace qwen3vl::fuzz {

// Aborts with a message when an invariant a target checks does not hold.
inline void check(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "fuzz invariant failed: %s\n", what);
  std::abort();
}

// Consumes the fuzzer's bytes front to back; reads past the end give zeros, so any input is a valid sequence.
class InputReader {
 public:
  InputReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint64_t u64() {
    uint64_t value = 0;
    for (int i = 0; i < 8; ++i) value = value << 8 | byte();
    return value;
  }
  uint32_t u32() { return static_cast<uint32_t>(u64() >> 32); }
  bool flag() { return byte() & 1; }
  // An integer in [low, high] (inclusive).
  int64_t in_range(int64_t low, int64_t high) {
    const uint64_t span = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
    const uint64_t value = span == UINT64_MAX ? u64() : u64() % (span + 1);
    return static_cast<int64_t>(static_cast<uint64_t>(low) + value);
  }
  // Any bit pattern, NaN and infinities included.
  double any_double() {
    const uint64_t bits = u64();
    double value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
  }
  // At most max_length bytes, ended early by a 0 byte (consumed, not returned).
  std::string string_until_zero(size_t max_length) {
    std::string out;
    while (pos_ < size_ && out.size() < max_length) {
      const char c = static_cast<char>(data_[pos_++]);
      if (c == '\0') break;
      out += c;
    }
    return out;
  }
  std::string rest() {
    std::string out(reinterpret_cast<const char*>(data_ + pos_), size_ - pos_);
    pos_ = size_;
    return out;
  }
  size_t remaining() const { return size_ - pos_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Splits text at every 0 byte, into at most max_parts parts (the last keeps the remaining zeros).
inline std::vector<std::string> split_at_zeros(std::string_view text, size_t max_parts) {
  std::vector<std::string> parts;
  while (parts.size() + 1 < max_parts) {
    const size_t zero = text.find('\0');
    if (zero == std::string_view::npos) break;
    parts.emplace_back(text.substr(0, zero));
    text.remove_prefix(zero + 1);
  }
  parts.emplace_back(text);
  return parts;
}

// A private folder under $TMPDIR (or /tmp) for the loaders that read files, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/qwen3vl-fuzz-XXXXXX";
    check(mkdtemp(pattern.data()) != nullptr, "mkdtemp");
    path_ = pattern;
  }
  ~TempDir() {
    if (DIR* dir = opendir(path_.c_str())) {
      while (dirent* entry = readdir(dir))
        if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0)
          unlink((path_ + "/" + entry->d_name).c_str());
      closedir(dir);
    }
    rmdir(path_.c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Writes DIR/name and returns its path.
  std::string write(const std::string& name, std::string_view bytes) const {
    const std::string file = path_ + "/" + name;
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    check(out.good(), "writing a temporary file");
    return file;
  }

 private:
  std::string path_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "reading a fixture file");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace qwen3vl::fuzz
