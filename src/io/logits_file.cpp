#include "io/logits_file.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace qwen3vl {

namespace {

constexpr char kMagic[8] = {'Q', '3', 'V', 'L', 'L', 'G', 'T', '1'};
constexpr size_t kHeaderBytes = 24;

template <typename T>
T read_le(const char* p) {
  T value;
  std::memcpy(&value, p, sizeof value);  // x86-64 and aarch64 Linux: little-endian, as the format
  return value;
}

}  // namespace

LogitsFile parse_logits_file(std::string_view bytes, const std::string& name) {
  if (bytes.size() < kHeaderBytes || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    throw_error(name, ": not a logits file (expected the 8 bytes \"Q3VLLGT1\" and a 24-byte header)");
  LogitsFile out;
  out.vocab = read_le<uint32_t>(bytes.data() + 8);
  const uint32_t reserved = read_le<uint32_t>(bytes.data() + 12);
  const uint64_t n = read_le<uint64_t>(bytes.data() + 16);
  if (out.vocab == 0) throw_error(name, ": vocab is 0");
  if (reserved != 0) throw_error(name, ": header bytes 12-15 must be 0 (another version of the format?)");
  if (n == 0) throw_error(name, ": no positions");
  // Each position takes 4 + 4 * vocab bytes; a header claiming more than 2^64 bytes cannot match any file.
  const uint64_t per_position = 4 + 4 * static_cast<uint64_t>(out.vocab);
  const bool representable = n <= (UINT64_MAX - kHeaderBytes) / per_position;
  if (!representable || kHeaderBytes + n * per_position != bytes.size())
    throw_error(name, ": ", bytes.size(), " bytes, but its header says ", n, " positions of ", out.vocab, " logits",
                representable ? " (" + std::to_string(kHeaderBytes + n * per_position) + " bytes)" : std::string());
  const char* p = bytes.data() + kHeaderBytes;
  out.ids.resize(n);
  std::memcpy(out.ids.data(), p, n * 4);
  out.rows.resize(n * static_cast<uint64_t>(out.vocab));
  std::memcpy(out.rows.data(), p + n * 4, out.rows.size() * 4);
  for (uint64_t i = 0; i < n; ++i) {
    if (out.ids[i] < 0) throw_error(name, ": token id ", out.ids[i], " at position ", i, " is negative");
    const float* row = out.rows.data() + i * out.vocab;
    bool finite = false;
    for (int64_t v = 0; v < out.vocab; ++v) {
      if (std::isnan(row[v]) || row[v] == INFINITY)
        throw_error(name, ": row ", i, " holds ", std::isnan(row[v]) ? "NaN" : "+inf", " at column ", v);
      finite = finite || std::isfinite(row[v]);
    }
    if (!finite) throw_error(name, ": row ", i, " is -inf everywhere");
  }
  return out;
}

LogitsFile read_logits_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(path, ": cannot read the logits file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return parse_logits_file(buffer.str(), path);
}

void write_logits_file(const std::string& path, const LogitsFile& logits) {
  if (logits.vocab <= 0 || logits.vocab > UINT32_MAX || logits.ids.empty() ||
      logits.rows.size() != logits.ids.size() * static_cast<size_t>(logits.vocab))
    throw_error(path, ": logits of inconsistent shape");
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw_error(tmp, ": cannot write");
    const uint32_t vocab = static_cast<uint32_t>(logits.vocab), reserved = 0;
    const uint64_t n = logits.ids.size();
    out.write(kMagic, sizeof kMagic);
    out.write(reinterpret_cast<const char*>(&vocab), 4);
    out.write(reinterpret_cast<const char*>(&reserved), 4);
    out.write(reinterpret_cast<const char*>(&n), 8);
    out.write(reinterpret_cast<const char*>(logits.ids.data()), static_cast<std::streamsize>(n * 4));
    out.write(reinterpret_cast<const char*>(logits.rows.data()), static_cast<std::streamsize>(logits.rows.size() * 4));
    out.flush();
    if (!out) throw_error(tmp, ": write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw_error(path, ": cannot rename ", tmp, " to it");
  }
}

}  // namespace qwen3vl
