// Runs one fuzz target's entry point on files, without libFuzzer: `qwen3vl_fuzz_replay TARGET PATH...`, each PATH a
// file or a folder of files. Used by ctest to replay every seed corpus and every committed crash (regressions/) in
// the normal build, with g++ or clang. A crash or a failed invariant aborts; otherwise it prints what it ran.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_common.h"

#define QWEN3VL_FUZZ_TARGET(name) extern "C" int fuzz_entry_##name(const uint8_t* data, size_t size);
#include "fuzz_targets.inc"
#undef QWEN3VL_FUZZ_TARGET

namespace {

struct Target {
  const char* name;
  int (*entry)(const uint8_t*, size_t);
};

const Target kTargets[] = {
#define QWEN3VL_FUZZ_TARGET(name) {#name, fuzz_entry_##name},
#include "fuzz_targets.inc"
#undef QWEN3VL_FUZZ_TARGET
};

// PATH itself, or the files in it (sorted, so runs are reproducible); a missing path gives nothing.
std::vector<std::string> files_at(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return {};
  if (!S_ISDIR(info.st_mode)) return {path};
  std::vector<std::string> files;
  if (DIR* dir = opendir(path.c_str())) {
    while (dirent* entry = readdir(dir))
      if (entry->d_name[0] != '.') files.push_back(path + "/" + entry->d_name);
    closedir(dir);
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  const Target* target = nullptr;
  for (const Target& candidate : kTargets)
    if (argc > 1 && std::strcmp(argv[1], candidate.name) == 0) target = &candidate;
  if (target == nullptr) {
    std::fprintf(stderr, "usage: %s TARGET PATH...   (TARGET one of:", argv[0]);
    for (const Target& candidate : kTargets) std::fprintf(stderr, " %s", candidate.name);
    std::fprintf(stderr, ")\n");
    return 2;
  }
  size_t count = 0;
  for (int i = 2; i < argc; ++i)
    for (const std::string& file : files_at(argv[i])) {
      const std::string bytes = qwen3vl::fuzz::read_file(file);
      std::fprintf(stderr, "replaying %s\n", file.c_str());
      target->entry(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      ++count;
    }
  std::printf("%s: %zu inputs replayed\n", target->name, count);
  return 0;
}
