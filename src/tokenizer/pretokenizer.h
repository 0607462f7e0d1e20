// The Split pre-tokenizer of tokenizer.json (behavior "Isolated", invert false), run with PCRE2.
// HF `tokenizers` evaluates the pattern with Oniguruma; both are backtracking engines with the same leftmost-first
// alternation, so the pieces agree once the character classes agree. translate_pattern() rewrites \p{L}, \p{N}, \s
// and \S so that PCRE2 (Unicode 14 tables) classifies every code point the way HF's Oniguruma (Unicode 16) does;
// see unicode_text.h. Case-insensitive groups such as (?i:'s|'t) fold identically in both (s, S and U+017F).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace qwen3vl {

class PreTokenizer {
 public:
  // `onig_pattern` is the regex as written in tokenizer.json; `source` names the file for error messages.
  PreTokenizer(const std::string& onig_pattern, const std::string& source);
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // Splits valid UTF-8 `text` into HF's "Isolated" pieces: every match, plus every non-empty gap between matches,
  // in order. The pieces view `text` and cover it exactly.
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

  // The PCRE2 pattern used for an Oniguruma pattern (exposed for tests).
  static std::string translate_pattern(std::string_view onig_pattern);

 private:
  struct Compiled;
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace qwen3vl
