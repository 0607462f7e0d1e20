// Logits files, what `qwen3vl kld --base-logits` reads (io/logits_file.h): any bytes either parse or are refused
// with Error. A file that parses has n ids, n * vocab rows, no NaN or +inf, and writes back to the same bytes.
#include <cmath>
#include <cstring>
#include <string>
#include <string_view>

#include "core/error.h"
#include "fuzz_common.h"
#include "io/logits_file.h"

using namespace qwen3vl;
using fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  LogitsFile file;
  try {
    file = parse_logits_file(bytes, "input.logits");
  } catch (const Error&) {
    return 0;
  }
  check(file.vocab > 0 && file.positions() > 0, "an accepted file has positions and a vocabulary");
  check(file.rows.size() == file.ids.size() * static_cast<size_t>(file.vocab), "rows are n x vocab");
  for (float v : file.rows) check(!std::isnan(v) && v != INFINITY, "no NaN or +inf is accepted");
  const fuzz::TempDir dir;
  const std::string path = dir.path() + "/back.logits";
  write_logits_file(path, file);
  const std::string written = fuzz::read_file(path);
  check(written.size() == size && std::memcmp(written.data(), data, size) == 0, "an accepted file writes back as is");
  return 0;
}
