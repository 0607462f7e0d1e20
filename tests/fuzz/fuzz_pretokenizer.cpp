// The pre-tokenizer pattern of a tokenizer.json: translate_pattern (Oniguruma -> PCRE2) and compile, then split on
// random valid UTF-8 text. The pieces must cover the text exactly, in order. PCRE2's match limit turns catastrophic
// backtracking into an Error instead of a hang. Input: the pattern, a 0 byte, the text.
#include "core/error.h"
#include "fuzz_common.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qwen3vl::fuzz::InputReader in(data, size);
  const std::string pattern = in.string_until_zero(512);
  const std::string text = qwen3vl::unicode::replace_invalid_utf8(in.rest());
  try {
    qwen3vl::PreTokenizer::translate_pattern(pattern);
    const qwen3vl::PreTokenizer pretokenizer(pattern, "fuzz");
    std::vector<std::string_view> pieces;
    pretokenizer.split(text, pieces);
    std::string joined;
    for (std::string_view piece : pieces) joined += piece;
    qwen3vl::fuzz::check(joined == text, "pieces cover the text");
  } catch (const qwen3vl::Error&) {
  }
  return 0;
}
