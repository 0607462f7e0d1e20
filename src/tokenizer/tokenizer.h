// Byte-level BPE tokenizer for Qwen3 / Qwen3-VL, matching HF `tokenizers` on the released tokenizer.json
// (transformers models/qwen2/tokenization_qwen2.py, Qwen2TokenizerFast). Pipeline of encode(), in HF's order:
//   1. invalid UTF-8 in the input is replaced the way Python's bytes.decode('utf-8', errors='replace') does
//      (HF only ever sees Python str, so this is what a caller passing bytes gets there);
//   2. added tokens (special and non-special, all `normalized: false`) are split out of the raw text first,
//      leftmost-longest, and map straight to their ids (never BPE-split);
//   3. every text segment between them is NFC-normalized on its own (HF's Unicode 9.0 NFC, see unicode_text.h);
//   4. the segment is split by the Split pre-tokenizer regex read from tokenizer.json (PCRE2, Oniguruma classes);
//   5. each piece's UTF-8 bytes are mapped through GPT-2's bytes_to_unicode and BPE-merged by merge rank.
// A Tokenizer is immutable after loading; encode/decode may be called from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qwen3vl {

class Tokenizer {
 public:
  // Loads tokenizer.json (model.vocab, model.merges in either "a b" string or ["a","b"] pair form, added_tokens with
  // their `special` flags, the pre_tokenizer's Split regex). Throws qwen3vl::Error naming the file on missing/corrupt
  // input.
  static Tokenizer from_file(const std::string& tokenizer_json_path);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Added/special tokens are matched first (longest match) and never BPE-split. No BOS/EOS is added.
  // split_special_tokens (transformers' tokenizer option of that name, tokenizers' encode_special_tokens): the text of
  // a special token (`special: true`) is tokenized like any other text; non-special added tokens still match.
  std::vector<int32_t> encode(std::string_view text, bool split_special_tokens = false) const;

  // Concatenates the tokens' bytes and decodes them as UTF-8; invalid sequences become U+FFFD exactly like Python's
  // errors="replace". Ids that name no token (e.g. the embedding's padding rows >= vocab_size()) are skipped, as HF
  // does. skip_special_tokens drops only the ids whose added token has `special: true`.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

  // Vocabulary lookups; token_to_id also finds added tokens. id_to_token returns the raw vocab string (byte-level
  // form, e.g. "Ġhello") and throws qwen3vl::Error for an id that names no token.
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;
  bool is_special(int32_t id) const;  // true only for added tokens with `special: true`
  int32_t vocab_size() const;         // highest id + 1 (151669 for Qwen3)

  // The text exactly as the model part sees it: steps 1-3 above (replacement of invalid UTF-8, NFC of the segments
  // between added tokens). decode(encode(text)) == normalize(text) for every input.
  std::string normalize(std::string_view text) const;

  // The bytes one token stands for (byte-level mapping undone); empty for ids that name no token. The view stays
  // valid as long as the tokenizer.
  std::string_view token_bytes(int32_t id) const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Streaming decode for printing token by token: never emits half a UTF-8 character. The concatenation of every
// push() result and the final flush() equals tokenizer.decode(ids, skip_special_tokens). Holds a pointer to the
// tokenizer, which must stay alive (and not be moved from) while the decoder is used.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);
  std::string push(int32_t id);  // returns the text that is complete so far (possibly empty)
  std::string flush();           // whatever remains (an incomplete tail becomes U+FFFD); the decoder is then empty

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  std::string pending_;  // bytes of an incomplete UTF-8 sequence at the end
};

}  // namespace qwen3vl
