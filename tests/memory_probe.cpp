#include "memory_probe.h"

#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace qwen3vl {
namespace testing {

MemoryUse memory_use() {
  MemoryUse use;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    std::istringstream fields(line);
    std::string key;
    int64_t kib = -1;
    fields >> key >> kib;
    if (key == "VmRSS:") use.rss_kib = kib;
    if (key == "VmHWM:") use.peak_kib = kib;
  }
  return use;
}

bool reset_peak_memory() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.flush();
  return static_cast<bool>(clear);
}

PeakGrowth peak_growth_of(const std::function<void()>& work) {
  reset_peak_memory();
  const MemoryUse before = memory_use();
  PeakGrowth growth;
  // Whether the reset took: a peak more than 1 MiB over the resident size was left from before. Under a sanitizer
  // the heap carries shadow memory, redzones and a quarantine, so a peak measured there bounds nothing of ours.
  growth.measured = !kHeapIsInstrumented && before.rss_kib > 0 && before.peak_kib <= before.rss_kib + 1024;
  try {
    work();
  } catch (...) {
    growth.measured = false;
  }
  growth.bytes = (memory_use().peak_kib - before.rss_kib) * 1024;
  return growth;
}

bool fill_in_child(void* bytes, size_t size, const std::function<void()>& fill) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return false;
  }
  if (pid == 0) {
    close(fds[0]);
    fill();
    const ssize_t written = write(fds[1], bytes, size);
    _exit(written == static_cast<ssize_t>(size) ? 0 : 1);
  }
  close(fds[1]);
  const ssize_t got = read(fds[0], bytes, size);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return got == static_cast<ssize_t>(size);
}

}  // namespace testing
}  // namespace qwen3vl
