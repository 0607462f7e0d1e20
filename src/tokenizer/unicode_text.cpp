#include "tokenizer/unicode_text.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iterator>

#include "core/error.h"

namespace qwen3vl::unicode {
namespace {

struct Range {
  char32_t first;
  char32_t last;
};

// Code points assigned after Unicode 9.0 that utf8proc 2.8 (Unicode 15) treats as normalization-active (nonzero
// combining class, part of a canonical decomposition, or a composite) while HF's Unicode 9.0 NFC leaves them alone.
// Derived once by comparing HF's NFC with utf8proc on 13.4M probe strings (every code point alone, every Python
// NFD form recomposed, every mark/unassigned code point around marks of combining classes 1..240): these code
// points are exactly the ones in every disagreement. The golden corpus covers them (category "nfc_unicode9").
constexpr Range kNfcInertForHf[] = {
    {0x07FD, 0x07FD}, {0x0898, 0x089F}, {0x08CA, 0x08D3}, {0x09FE, 0x09FE}, {0x0C3C, 0x0C3C},
    {0x0D3B, 0x0D3C}, {0x0EBA, 0x0EBA}, {0x1715, 0x1715}, {0x1ABF, 0x1ACE}, {0x1DF6, 0x1DFA},
    {0xA82C, 0xA82C}, {0x10D24, 0x10D27}, {0x10EAB, 0x10EAC}, {0x10EFD, 0x10EFF}, {0x10F46, 0x10F50},
    {0x10F82, 0x10F85}, {0x11070, 0x11070}, {0x1133B, 0x1133B}, {0x1145E, 0x1145E}, {0x11839, 0x1183A},
    {0x11930, 0x11930}, {0x11935, 0x11935}, {0x11938, 0x11938}, {0x1193D, 0x1193E}, {0x11943, 0x11943},
    {0x119E0, 0x119E0}, {0x11A34, 0x11A34}, {0x11A47, 0x11A47}, {0x11A99, 0x11A99}, {0x11D42, 0x11D42},
    {0x11D44, 0x11D45}, {0x11D97, 0x11D97}, {0x11F41, 0x11F42}, {0x16FF0, 0x16FF1}, {0x1E08F, 0x1E08F},
    {0x1E130, 0x1E136}, {0x1E2AE, 0x1E2AE}, {0x1E2EC, 0x1E2EF}, {0x1E4EC, 0x1E4EF},
};

// Letters / numbers of Oniguruma's Unicode 16 tables (as built into HF tokenizers 0.23) that PCRE2 10.42's
// Unicode 14 tables leave unassigned. Computed as HF-minus-PCRE2 over all code points; the unit test
// TokenizerUnicode.PretokenizerClassesMatchHf re-checks every code point against HF's classes
// (tests/fixtures/tokenizer/hf_unicode_classes.json).
constexpr Range kExtraLetters[] = {
    {0x1C89, 0x1C8A}, {0xA7CB, 0xA7CD}, {0xA7DA, 0xA7DC}, {0x105C0, 0x105F3}, {0x10D4A, 0x10D65},
    {0x10D6F, 0x10D85}, {0x10EC2, 0x10EC4}, {0x1123F, 0x11240}, {0x11380, 0x11389}, {0x1138B, 0x1138B},
    {0x1138E, 0x1138E}, {0x11390, 0x113B5}, {0x113B7, 0x113B7}, {0x113D1, 0x113D1}, {0x113D3, 0x113D3},
    {0x11BC0, 0x11BE0}, {0x11F02, 0x11F02}, {0x11F04, 0x11F10}, {0x11F12, 0x11F33}, {0x1342F, 0x1342F},
    {0x13441, 0x13446}, {0x13460, 0x143FA}, {0x16100, 0x1611D}, {0x16D40, 0x16D6C}, {0x18CFF, 0x18CFF},
    {0x1B132, 0x1B132}, {0x1B155, 0x1B155}, {0x1DF25, 0x1DF2A}, {0x1E030, 0x1E06D}, {0x1E4D0, 0x1E4EB},
    {0x1E5D0, 0x1E5ED}, {0x1E5F0, 0x1E5F0}, {0x2B739, 0x2B739}, {0x2EBF0, 0x2EE5D}, {0x31350, 0x323AF},
};
constexpr Range kExtraNumbers[] = {
    {0x10D40, 0x10D49}, {0x116D0, 0x116E3}, {0x11BF0, 0x11BF9}, {0x11F50, 0x11F59}, {0x16130, 0x16139},
    {0x16D70, 0x16D79}, {0x1CCF0, 0x1CCF9}, {0x1D2C0, 0x1D2D3}, {0x1E4F0, 0x1E4F9}, {0x1E5F1, 0x1E5FA},
};
// Oniguruma's \s with Unicode (the White_Space property).
constexpr Range kWhitespace[] = {
    {0x0009, 0x000D}, {0x0020, 0x0020}, {0x0085, 0x0085}, {0x00A0, 0x00A0}, {0x1680, 0x1680},
    {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000},
};

template <std::size_t N>
std::string class_body(const Range (&ranges)[N]) {
  std::string out;
  char buf[40];
  for (const Range& r : ranges) {
    if (r.first == r.last) {
      std::snprintf(buf, sizeof buf, "\\x{%X}", static_cast<unsigned>(r.first));
    } else {
      std::snprintf(buf, sizeof buf, "\\x{%X}-\\x{%X}", static_cast<unsigned>(r.first),
                    static_cast<unsigned>(r.last));
    }
    out += buf;
  }
  return out;
}

bool nfc_inert_for_hf(char32_t cp) {
  if (cp < kNfcInertForHf[0].first) return false;
  auto it = std::upper_bound(std::begin(kNfcInertForHf), std::end(kNfcInertForHf), cp,
                             [](char32_t c, const Range& r) { return c < r.first; });
  return it != std::begin(kNfcInertForHf) && cp <= std::prev(it)->last;
}

void append_replacement(std::string& out) { out += "\xEF\xBF\xBD"; }

// For a UTF-8 lead byte: number of continuation bytes and the allowed range of the first one (Unicode Table 3-7,
// well-formed byte sequences). False for bytes that can never start a character.
bool lead_byte_info(unsigned char b, int& extra, unsigned char& lo, unsigned char& hi) {
  lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) {
    extra = 1;
  } else if (b == 0xE0) {
    extra = 2, lo = 0xA0;
  } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
    extra = 2;
  } else if (b == 0xED) {
    extra = 2, hi = 0x9F;
  } else if (b == 0xF0) {
    extra = 3, lo = 0x90;
  } else if (b >= 0xF1 && b <= 0xF3) {
    extra = 3;
  } else if (b == 0xF4) {
    extra = 3, hi = 0x8F;
  } else {
    return false;
  }
  return true;
}

std::string utf8proc_nfc(std::string_view text) {
  if (text.empty()) return {};
  utf8proc_uint8_t* dst = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()),
                   &dst, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) throw_error("tokenizer: NFC normalization failed: ", utf8proc_errmsg(n));
  std::string out(reinterpret_cast<const char*>(dst), static_cast<std::size_t>(n));
  std::free(dst);
  return out;
}

}  // namespace

std::string replace_invalid_utf8_prefix(std::string_view s, bool final, std::size_t* consumed) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      out.push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    int extra = 0;
    unsigned char lo = 0, hi = 0;
    if (!lead_byte_info(b, extra, lo, hi)) {  // 0x80..0xC1 or 0xF5..0xFF can never start a character
      append_replacement(out);
      ++i;
      continue;
    }
    int j = 1;
    for (; j <= extra; ++j) {
      if (i + j >= n) break;
      const auto c = static_cast<unsigned char>(s[i + j]);
      const unsigned char l = (j == 1) ? lo : 0x80, h = (j == 1) ? hi : 0xBF;
      if (c < l || c > h) break;
    }
    if (j > extra) {  // complete, valid character
      out.append(s.data() + i, static_cast<std::size_t>(extra) + 1);
      i += static_cast<std::size_t>(extra) + 1;
    } else if (i + j >= n && !final) {  // valid prefix cut off by the end of the buffer: wait for more bytes
      break;
    } else {  // maximal subpart s[i, i+j) is invalid (or truncated at the end): one U+FFFD
      append_replacement(out);
      i += static_cast<std::size_t>(j);
    }
  }
  if (consumed != nullptr) *consumed = i;
  return out;
}

std::string replace_invalid_utf8(std::string_view bytes) {
  if (is_valid_utf8(bytes)) return std::string(bytes);
  return replace_invalid_utf8_prefix(bytes, /*final=*/true, nullptr);
}

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    int extra = 0;
    unsigned char lo = 0, hi = 0;
    if (!lead_byte_info(b, extra, lo, hi) || i + static_cast<std::size_t>(extra) >= n) return false;
    for (int j = 1; j <= extra; ++j) {
      const auto c = static_cast<unsigned char>(s[i + j]);
      if (c < (j == 1 ? lo : 0x80) || c > (j == 1 ? hi : 0xBF)) return false;
    }
    i += static_cast<std::size_t>(extra) + 1;
  }
  return true;
}

char32_t next_code_point(std::string_view s, std::size_t& pos) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  const int len = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : 2;
  char32_t cp = b0 & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
  for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[pos + k]) & 0x3F);
  pos += static_cast<std::size_t>(len);
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string nfc(std::string_view text) {
  // ASCII is always NFC; most prompts are mostly ASCII.
  const bool ascii = std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) return std::string(text);
  std::string out;
  out.reserve(text.size());
  std::size_t start = 0, pos = 0;
  while (pos < text.size()) {
    const std::size_t at = pos;
    const char32_t cp = next_code_point(text, pos);
    if (cp >= 0x7FD && nfc_inert_for_hf(cp)) {
      out += utf8proc_nfc(text.substr(start, at - start));
      out.append(text.data() + at, pos - at);
      start = pos;
    }
  }
  out += utf8proc_nfc(text.substr(start));
  return out;
}

const std::string& pcre2_extra_letters() {
  static const std::string body = class_body(kExtraLetters);
  return body;
}

const std::string& pcre2_extra_numbers() {
  static const std::string body = class_body(kExtraNumbers);
  return body;
}

const std::string& pcre2_whitespace() {
  static const std::string body = class_body(kWhitespace);
  return body;
}

}  // namespace qwen3vl::unicode
