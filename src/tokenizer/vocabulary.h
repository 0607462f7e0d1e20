// The token table of a Tokenizer, compact because it has ~150k entries: per id the bytes the token decodes to and
// its kind, plus an open-addressing index from the model vocab's token strings to ids. For Qwen3 this is ~2.7 MB where
// a std::string per token in three containers took ~20 MB.
//
// Token strings ("raw" strings, as in tokenizer.json) are not stored, only bytes: a token whose every character is
// in GPT-2's byte-level alphabet ("Ġhello", also "<|im_start|>") has as raw string byte_level::encode_bytes() of its
// bytes; any other token's raw string is its bytes (byte_level::decode_token leaves it as it is). The index hashes
// raw strings and compares them against that re-encoding.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/packed_strings.h"

namespace qwen3vl {

class Vocabulary {
 public:
  enum class Kind : std::uint8_t { none, vocab, added, special };  // none: no token has this id
  struct Token {
    std::string_view raw;
    Kind kind;
  };

  Vocabulary() = default;
  // Ids [0, size); token_of(id) gives each id's raw string and kind (Kind::none for ids no token has).
  Vocabulary(std::int32_t size, const std::function<Token(std::int32_t)>& token_of);

  // Makes the model vocab's ids findable by their raw strings, in order: when two ids have the same raw string (a
  // key repeated in model.vocab) the later one wins, as in a JSON object, and the earlier one names no token after
  // that unless it is an added token.
  void index_vocab(const std::vector<std::int32_t>& ids);

  std::int32_t size() const { return static_cast<std::int32_t>(kinds_.size()); }
  Kind kind(std::int32_t id) const;
  std::string_view bytes(std::int32_t id) const;  // empty for ids of Kind::none
  std::string raw(std::int32_t id) const;          // the raw string of an id that names a token
  std::optional<std::int32_t> find(std::string_view raw) const;  // model vocab lookup

 private:
  bool raw_equals(std::int32_t id, std::string_view raw) const;
  std::uint64_t raw_hash(std::int32_t id) const;
  std::size_t slot_of(std::uint64_t hash) const;

  PackedStrings bytes_;                 // bytes of id i at i
  std::vector<std::uint8_t> kinds_;     // Kind, plus kRawIsBytes for tokens that are not byte-level strings
  std::vector<std::int32_t> slots_;     // the index: ids, -1 for empty slots, linear probing; a power of two long
  int slot_bits_ = 0;
};

}  // namespace qwen3vl
