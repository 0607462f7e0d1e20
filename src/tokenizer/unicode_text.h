// UTF-8 helpers for the tokenizer: Python-compatible replacement of invalid UTF-8, HF-compatible NFC, and the
// Unicode class data that makes PCRE2 classify code points like the Oniguruma build inside HF `tokenizers`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qwen3vl::unicode {

// Decodes `bytes` as UTF-8 and re-encodes it, replacing every maximal invalid subpart with U+FFFD exactly like
// Python's bytes.decode('utf-8', errors='replace') (and Rust's String::from_utf8_lossy, which HF's decoder uses).
std::string replace_invalid_utf8(std::string_view bytes);

// Streaming variant: converts as much of `bytes` as is certain. When `final` is false, a trailing sequence that is
// a valid-but-incomplete prefix of a UTF-8 character is left unconsumed; *consumed receives the bytes used.
std::string replace_invalid_utf8_prefix(std::string_view bytes, bool final, std::size_t* consumed);

// True when `bytes` is valid UTF-8 (no surrogates, no overlongs, <= U+10FFFF).
bool is_valid_utf8(std::string_view bytes);

// NFC as HF `tokenizers` computes it. HF's normalizer (crate unicode-normalization-alignments) carries Unicode 9.0
// tables, whereas utf8proc is newer: code points assigned after 9.0 that take part in normalization there (marks
// with a combining class, composition pairs such as Dives Akuru U+11935 U+11930) are inert starters for HF. We cut
// the text at those code points and NFC the pieces with utf8proc, which reproduces HF (a starter that never
// composes blocks reordering and composition across it). Input must be valid UTF-8.
std::string nfc(std::string_view valid_utf8);

// Decodes one code point at `pos` of valid UTF-8 and advances `pos`.
char32_t next_code_point(std::string_view valid_utf8, std::size_t& pos);

// Appends the UTF-8 encoding of `cp` to `out`.
void append_utf8(std::string& out, char32_t cp);

// PCRE2 class bodies (ranges usable inside [...]) that make PCRE2 10.42 (Unicode 14) agree with HF's Oniguruma
// (Unicode 16): code points Oniguruma puts in \p{L} / \p{N} that PCRE2's tables leave unassigned, and the exact
// \s set of Oniguruma (Unicode White_Space: PCRE2 also counts U+180E, Oniguruma does not).
const std::string& pcre2_extra_letters();
const std::string& pcre2_extra_numbers();
const std::string& pcre2_whitespace();

}  // namespace qwen3vl::unicode
