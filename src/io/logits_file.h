// Logits files: the token ids of a text and one row of next-token logits per position, so that any engine's logits
// (transformers', llama.cpp's, ours under another format) can be compared with ours on the same tokens
// (`qwen3vl kld --save-logits FILE` / `--base-logits FILE`). Little-endian, no padding:
//
//   offset 0   8 bytes        magic "Q3VLLGT1"
//   offset 8   uint32         vocab: logits per row (the checkpoint's config.json vocab_size)
//   offset 12  uint32         0 (reserved)
//   offset 16  uint64         n: positions
//   offset 24  int32[n]       token ids; row i holds the logits for the token after ids[0..i]
//   then       float32[n, vocab]  the rows
//
// From numpy: b"Q3VLLGT1" + struct.pack("<IIQ", vocab, 0, n) + ids.astype("<i4").tobytes() +
// logits.astype("<f4").tobytes(). Rows may hold -inf (a token an engine masks), never +inf or NaN.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qwen3vl {

struct LogitsFile {
  int64_t vocab = 0;
  std::vector<int32_t> ids;   // n
  std::vector<float> rows;    // [n, vocab]
  int64_t positions() const { return static_cast<int64_t>(ids.size()); }
};

// The file's bytes; throws Error naming `name` and what is wrong (magic, sizes, a NaN in row i, ...).
LogitsFile parse_logits_file(std::string_view bytes, const std::string& name);
LogitsFile read_logits_file(const std::string& path);

// Written to PATH.tmp and renamed, so an interrupted write leaves no half file under PATH. Throws Error naming path.
void write_logits_file(const std::string& path, const LogitsFile& logits);

}  // namespace qwen3vl
