// GPT-2 byte-level alphabet (bytes_to_unicode) and the BPE model of tokenizer.json.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/packed_strings.h"

namespace qwen3vl {
namespace byte_level {

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100.. in order.
char32_t byte_to_char(std::uint8_t byte);

// UTF-8 of the character that stands for `byte` (1 or 2 bytes).
std::string_view byte_utf8(std::uint8_t byte);

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
  // `merges`: the two token strings of every merge rule, rule r's at 2r and 2r+1 (its rank is r); `token_id` finds a
  // byte-level token string in the model vocab. `source` names the file.
  BpeModel(const PackedStrings& merges, const std::function<std::optional<std::int32_t>(std::string_view)>& token_id,
           const std::string& source);

  // Appends the ids for one pre-tokenized piece given as raw UTF-8 bytes.
  void encode(std::string_view piece, std::vector<std::int32_t>& ids) const;

 private:
  struct Merge {
    std::int32_t right;  // id of the pair's right token (the left one is the row the merge is in)
    std::int32_t rank;
    std::int32_t id;     // id of the merged token
  };
  const Merge* find(std::int32_t left, std::int32_t right) const;
  void merge_word(std::string_view piece, std::vector<std::int32_t>& ids) const;

  std::int32_t byte_ids_[256];  // id of each single-byte token, -1 when the vocab lacks it
  // The merge rules grouped by left token id, each group sorted by (right, rank): those whose left token is `a` are
  // merges_[row_begin_[a], row_begin_[a + 1]). 12 bytes a rule (a hash map of the pairs took ~50), and a lookup is a
  // binary search in one short row.
  std::vector<std::uint32_t> row_begin_;
  std::vector<Merge> merges_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<std::int32_t>> cache_;
};

}  // namespace qwen3vl
