#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pretokenizer.h"

#include <pcre2.h>

#include "core/error.h"
#include "tokenizer/unicode_text.h"

namespace qwen3vl {
namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof buf) < 0) return "PCRE2 error " + std::to_string(code);
  return reinterpret_cast<const char*>(buf);
}

// Body (no brackets) of the class that replaces \p{name} / \s, or empty when the escape is left to PCRE2.
std::string class_body_for(std::string_view name) {
  if (name == "L" || name == "Letter") return "\\p{L}" + unicode::pcre2_extra_letters();
  if (name == "N" || name == "Number") return "\\p{N}" + unicode::pcre2_extra_numbers();
  return {};
}

}  // namespace

struct PreTokenizer::Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Compiled() { pcre2_code_free(code); }
};

std::string PreTokenizer::translate_pattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() * 4);
  bool in_class = false;
  std::size_t i = 0;
  const std::size_t n = p.size();
  // Emits a class body either inline (inside [...]) or wrapped as its own (possibly negated) class.
  auto emit = [&](const std::string& body, bool negated) {
    if (in_class) {
      out += body;
    } else {
      out += negated ? "[^" : "[";
      out += body;
      out += ']';
    }
  };
  while (i < n) {
    const char c = p[i];
    if (c == '\\' && i + 1 < n) {
      const char e = p[i + 1];
      if ((e == 'p' || e == 'P') && i + 2 < n) {
        std::string_view name;
        std::size_t end;  // one past the escape
        if (p[i + 2] == '{') {
          const std::size_t close = p.find('}', i + 3);
          if (close == std::string_view::npos) throw_error("unterminated \\p{ in pattern");
          name = p.substr(i + 3, close - i - 3);
          end = close + 1;
        } else {
          name = p.substr(i + 2, 1);
          end = i + 3;
        }
        const std::string body = class_body_for(name);
        // A negated property inside a class cannot be widened; it is left to PCRE2 (not used by Qwen's pattern).
        if (!body.empty() && !(e == 'P' && in_class)) {
          emit(body, e == 'P');
        } else {
          out.append(p.substr(i, end - i));
        }
        i = end;
        continue;
      }
      if (e == 's' || (e == 'S' && !in_class)) {
        emit(unicode::pcre2_whitespace(), e == 'S');
        i += 2;
        continue;
      }
      if (e == 'x' && i + 2 < n && p[i + 2] == '{') {
        const std::size_t close = p.find('}', i + 3);
        const std::size_t end = close == std::string_view::npos ? n : close + 1;
        out.append(p.substr(i, end - i));
        i = end;
        continue;
      }
      out.append(p.substr(i, 2));
      i += 2;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      ++i;
      if (i < n && p[i] == '^') out += p[i++];
      if (i < n && p[i] == ']') out += p[i++];  // a leading ']' is a literal
      continue;
    }
    if (in_class && c == '[' && i + 1 < n && p[i + 1] == ':') {  // POSIX class [:name:]
      const std::size_t close = p.find(":]", i + 2);
      const std::size_t end = close == std::string_view::npos ? i + 1 : close + 2;
      out.append(p.substr(i, end - i));
      i = end;
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
    ++i;
  }
  return out;
}

PreTokenizer::PreTokenizer(const std::string& onig_pattern, const std::string& source)
    : compiled_(std::make_unique<Compiled>()) {
  const std::string pattern = translate_pattern(onig_pattern);
  int error = 0;
  PCRE2_SIZE offset = 0;
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                  PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (compiled_->code == nullptr) {
    throw_error(source, ": pre_tokenizer Split pattern does not compile (", pcre2_message(error), " at offset ",
                offset, ")");
  }
  compiled_->jit = pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE) == 0;
}

PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& pieces) const {
  if (text.empty()) return;
  struct MatchData {
    pcre2_match_data* md;
    explicit MatchData(const pcre2_code* code) : md(pcre2_match_data_create_from_pattern(code, nullptr)) {}
    ~MatchData() { pcre2_match_data_free(md); }
  } data(compiled_->code);
  if (data.md == nullptr) throw_error("tokenizer: out of memory creating PCRE2 match data");

  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const PCRE2_SIZE length = text.size();
  PCRE2_SIZE offset = 0;   // where the next search starts
  PCRE2_SIZE emitted = 0;  // end of the last piece emitted
  while (offset < length) {
    int rc = compiled_->jit ? pcre2_jit_match(compiled_->code, subject, length, offset, 0, data.md, nullptr)
                            : PCRE2_ERROR_JIT_BADOPTION;
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_JIT_BADOPTION) {
      // The interpreter keeps its backtracking frames on the heap, so it handles what the JIT stack cannot.
      rc = pcre2_match(compiled_->code, subject, length, offset, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, data.md,
                       nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw_error("tokenizer: pre-tokenizer regex failed: ", pcre2_message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data.md);
    const PCRE2_SIZE start = ov[0], end = ov[1];
    if (start > emitted) pieces.push_back(text.substr(emitted, start - emitted));  // gap before the match
    if (end > start) {
      pieces.push_back(text.substr(start, end - start));
      emitted = end;
      offset = end;
    } else {  // empty match: nothing to isolate, step over one code point
      emitted = start;
      offset = start + 1;
      while (offset < length && (static_cast<unsigned char>(text[offset]) & 0xC0) == 0x80) ++offset;
    }
  }
  if (emitted < length) pieces.push_back(text.substr(emitted));
}

}  // namespace qwen3vl
