// GPT-2 byte-level alphabet (bytes_to_unicode) and the BPE model of tokenizer.json.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace qwen3vl {
namespace byte_level {

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100.. in order.
char32_t byte_to_char(std::uint8_t byte);

// UTF-8 text of the byte-level string for `bytes` (e.g. " hi" -> "Ġhi").
std::string encode_bytes(std::string_view bytes);

// Inverse mapping as HF's ByteLevel decoder applies it per token: when every character of `token` is a byte-level
// character, writes the bytes it stands for; otherwise (e.g. an added token with other characters) the token's own
// UTF-8 bytes. Returns whether the byte-level mapping applied.
bool decode_token(std::string_view token, std::string& bytes);

}  // namespace byte_level

// Byte-level BPE (HF `tokenizers` models::bpe without dropout, unk, prefixes or byte fallback): a piece's bytes
// start as one symbol per byte, then the adjacent pair of lowest merge rank (leftmost on ties) is merged until no
// pair has a merge. Results are cached per piece (thread-safe).
class BpeModel {
 public:
  // `vocab`: byte-level token string -> id; `merges`: ranked pairs (rank = index). `source` names the file.
  BpeModel(const std::unordered_map<std::string, std::int32_t>& vocab,
           const std::vector<std::pair<std::string, std::string>>& merges, const std::string& source);

  // Appends the ids for one pre-tokenized piece given as raw UTF-8 bytes.
  void encode(std::string_view piece, std::vector<std::int32_t>& ids) const;

 private:
  struct Merge {
    std::int32_t rank;
    std::int32_t id;
  };
  static std::uint64_t key(std::int32_t a, std::int32_t b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }
  void merge_word(std::string_view piece, std::vector<std::int32_t>& ids) const;

  std::int32_t byte_ids_[256];  // id of each single-byte token, -1 when the vocab lacks it
  std::unordered_map<std::uint64_t, Merge> merges_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<std::int32_t>> cache_;
};

}  // namespace qwen3vl
