// The HF tokenizer goldens (tests/fixtures/tokenizer/, made by scripts/reference/make_tokenizer_goldens.py) for the
// tests of every layer that tokenizes: the tokenizer itself, the engine's tokenize API, the CLI and the server.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace qwen3vl {
namespace testing {

struct TokenizerGolden {
  std::string cat;
  std::string input;  // raw bytes (the invalid_utf8 strings are not valid UTF-8)
  std::vector<int32_t> ids;
  std::string decoded;       // HF decode(ids)
  std::string decoded_skip;  // HF decode(ids, skip_special_tokens=True)
};

// goldens.jsonl, in file order.
const std::vector<TokenizerGolden>& tokenizer_goldens();

// goldens_split_special.jsonl: for the goldens that hold a special token's text, by their index in
// tokenizer_goldens(), HF's ids with the special tokens tokenized as plain text (split_special_tokens=True).
const std::map<size_t, std::vector<int32_t>>& split_special_goldens();

}  // namespace testing
}  // namespace qwen3vl
