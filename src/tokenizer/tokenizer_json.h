// Reads tokenizer.json without holding its two big tables in a JSON DOM. As nlohmann::json values, model.vocab
// (~150k entries) and model.merges (~150k rules) of Qwen3's made the loading's heap peak at ~75 MB, which glibc
// kept for the process afterwards. Here a SAX handler packs their entries into PackedStrings as they stream past, and
// only the rest of the file (added_tokens, normalizer, pre_tokenizer, the model's flags: a few kB) becomes a DOM.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/packed_strings.h"

namespace qwen3vl {

constexpr std::int64_t kMaxTokenId = 1 << 24;  // far above any real vocabulary; guards the id-indexed tables

struct TokenizerJson {
  // The whole file, except that model.vocab and model.merges, when they are an object and an array as they must be,
  // are empty in it: checks of the rest of the file (and of whether those two are present) work as on the full DOM.
  nlohmann::json root;
  PackedStrings vocab_tokens;           // model.vocab's keys, in file order
  std::vector<std::int32_t> vocab_ids;  // their ids, each in [0, kMaxTokenId]
  PackedStrings merges;                 // model.merges: the two token strings of every rule, in rank order
  // The first malformed entry of model.vocab / model.merges, as the message to follow "FILE: " ("" when none). The
  // caller reports it once the fields a DOM walk checks first are fine, so errors come in the same order as before.
  std::string vocab_error;
  std::string merges_error;
};

// Throws qwen3vl::Error naming `path` when it cannot be opened or is not valid JSON.
TokenizerJson read_tokenizer_json(const std::string& path);

}  // namespace qwen3vl
