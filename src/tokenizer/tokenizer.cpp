#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode_text.h"

namespace qwen3vl {

using nlohmann::json;

struct Tokenizer::Impl {
  std::string source;
  std::unordered_map<std::string, std::int32_t> vocab;  // model vocab
  struct Added {
    std::string content;
    std::int32_t id;
    bool special;
  };
  std::vector<Added> added;                                   // sorted by content length, longest first
  std::unordered_map<std::string, std::int32_t> added_by_content;
  std::array<bool, 256> added_first_byte{};                   // some added token starts with this byte
  std::vector<std::string> tokens;                            // id -> raw token string ("" for holes)
  std::vector<std::string> bytes;                             // id -> bytes it decodes to
  std::vector<unsigned char> kind;                            // 0 hole, 1 vocab, 2 added, 3 added special
  std::unique_ptr<PreTokenizer> pretokenizer;
  std::unique_ptr<BpeModel> bpe;

  // Longest added token starting at text[pos], or nullptr.
  const Added* added_at(std::string_view text, std::size_t pos) const {
    if (!added_first_byte[static_cast<unsigned char>(text[pos])]) return nullptr;
    for (const Added& a : added) {  // longest first, so the first hit is the longest match
      if (text.compare(pos, a.content.size(), a.content) == 0) return &a;
    }
    return nullptr;
  }

  // Calls on_text(segment) for the text between added tokens and on_added(token) for each added token, in order.
  template <typename OnText, typename OnAdded>
  void split_added(std::string_view text, OnText on_text, OnAdded on_added) const {
    std::size_t start = 0;
    for (std::size_t pos = 0; pos < text.size();) {
      if (const Added* a = added_at(text, pos)) {
        if (pos > start) on_text(text.substr(start, pos - start));
        on_added(*a);
        pos += a->content.size();
        start = pos;
      } else {
        ++pos;
      }
    }
    if (start < text.size()) on_text(text.substr(start));
  }
};

namespace {

constexpr std::int64_t kMaxTokenId = 1 << 24;  // far above any real vocabulary; guards the id-indexed tables

const json& require(const json& parent, const char* key, const std::string& where, const std::string& source) {
  if (!parent.is_object() || !parent.contains(key)) throw_error(source, ": missing field ", where, key);
  return parent.at(key);
}

bool flag(const json& obj, const char* key) {
  const auto it = obj.find(key);
  return it != obj.end() && it->is_boolean() && it->get<bool>();
}

// Finds the Split pre-tokenizer's regex (possibly inside a Sequence) and checks the rest is what we implement.
std::string split_pattern(const json& root, const std::string& source) {
  const json& pre = require(root, "pre_tokenizer", "", source);
  std::vector<const json*> steps;
  if (pre.is_object() && pre.value("type", "") == "Sequence") {
    for (const json& p : require(pre, "pretokenizers", "pre_tokenizer.", source)) steps.push_back(&p);
  } else {
    steps.push_back(&pre);
  }
  std::string pattern;
  for (const json* step : steps) {
    const std::string type = step->is_object() ? step->value("type", "") : "";
    if (type == "Split") {
      const json& pat = require(*step, "pattern", "pre_tokenizer.Split.", source);
      if (!pat.is_object() || !pat.contains("Regex") || !pat["Regex"].is_string()) {
        throw_error(source, ": pre_tokenizer.Split.pattern must be {\"Regex\": string}");
      }
      if (step->value("behavior", "") != "Isolated" || flag(*step, "invert")) {
        throw_error(source, ": pre_tokenizer.Split: only behavior \"Isolated\" without invert is supported");
      }
      if (!pattern.empty()) throw_error(source, ": pre_tokenizer: more than one Split is not supported");
      pattern = pat["Regex"].get<std::string>();
    } else if (type == "ByteLevel") {
      if (flag(*step, "use_regex") || flag(*step, "add_prefix_space")) {
        throw_error(source, ": pre_tokenizer.ByteLevel: use_regex/add_prefix_space true is not supported");
      }
    } else {
      throw_error(source, ": pre_tokenizer: unsupported type \"", type, "\"");
    }
  }
  if (pattern.empty()) throw_error(source, ": pre_tokenizer: no Split regex found");
  return pattern;
}

void check_model(const json& model, const std::string& source) {
  if (model.value("type", "BPE") != "BPE") throw_error(source, ": model.type must be \"BPE\"");
  if (flag(model, "byte_fallback") || flag(model, "ignore_merges")) {
    throw_error(source, ": model: byte_fallback/ignore_merges are not supported");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const auto it = model.find(key);
    if (it != model.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty())) {
      throw_error(source, ": model.", key, " is not supported");
    }
  }
  const auto dropout = model.find("dropout");
  if (dropout != model.end() && !dropout->is_null()) throw_error(source, ": model.dropout is not supported");
}

std::vector<std::pair<std::string, std::string>> read_merges(const json& merges, const std::string& source) {
  if (!merges.is_array()) throw_error(source, ": model.merges must be an array");
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (std::size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    if (m.is_string()) {  // "a b"
      const std::string s = m.get<std::string>();
      const std::size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        throw_error(source, ": model.merges[", i, "] must be two tokens separated by one space");
      }
      out.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // ["a", "b"]
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      throw_error(source, ": model.merges[", i, "] must be \"a b\" or [\"a\", \"b\"]");
    }
  }
  return out;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(path, ": cannot open tokenizer file");
  json root;
  try {
    root = json::parse(in);
  } catch (const json::exception& e) {
    throw_error(path, ": invalid tokenizer JSON: ", e.what());
  }
  auto impl = std::make_unique<Impl>();
  impl->source = path;
  try {
    const auto normalizer = root.find("normalizer");
    if (normalizer != root.end() && !normalizer->is_null() && normalizer->value("type", "") != "NFC") {
      throw_error(path, ": normalizer: only NFC (or none) is supported");
    }
    const json& model = require(root, "model", "", path);
    check_model(model, path);
    const json& vocab = require(model, "vocab", "model.", path);
    if (!vocab.is_object()) throw_error(path, ": model.vocab must be an object");
    std::int32_t max_id = -1;
    impl->vocab.reserve(vocab.size());
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      if (!it.value().is_number_integer() || it.value().get<std::int64_t>() < 0 ||
          it.value().get<std::int64_t>() > kMaxTokenId) {
        throw_error(path, ": model.vocab[\"", it.key(), "\"] must be a non-negative integer id");
      }
      const auto id = it.value().get<std::int32_t>();
      impl->vocab.emplace(it.key(), id);
      max_id = std::max(max_id, id);
    }
    const auto merges = read_merges(require(model, "merges", "model.", path), path);

    const json& added = require(root, "added_tokens", "", path);
    if (!added.is_array()) throw_error(path, ": added_tokens must be an array");
    for (std::size_t i = 0; i < added.size(); ++i) {
      const json& a = added[i];
      const std::string where = "added_tokens[" + std::to_string(i) + "].";
      const json& id = require(a, "id", where, path);
      const json& content = require(a, "content", where, path);
      if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() > kMaxTokenId ||
          !content.is_string() || content.get<std::string>().empty()) {
        throw_error(path, ": ", where, "id/content must be a non-negative integer and a non-empty string");
      }
      if (flag(a, "lstrip") || flag(a, "rstrip") || flag(a, "single_word") || flag(a, "normalized")) {
        throw_error(path, ": ", where, "lstrip/rstrip/single_word/normalized true is not supported");
      }
      Impl::Added entry{content.get<std::string>(), id.get<std::int32_t>(), flag(a, "special")};
      impl->added_by_content[entry.content] = entry.id;
      impl->added_first_byte[static_cast<unsigned char>(entry.content[0])] = true;
      max_id = std::max(max_id, entry.id);
      impl->added.push_back(std::move(entry));
    }
    std::stable_sort(impl->added.begin(), impl->added.end(),
                     [](const Impl::Added& x, const Impl::Added& y) { return x.content.size() > y.content.size(); });

    const auto size = static_cast<std::size_t>(max_id + 1);
    impl->tokens.assign(size, std::string());
    impl->bytes.assign(size, std::string());
    impl->kind.assign(size, 0);
    for (const auto& [token, id] : impl->vocab) {
      impl->tokens[static_cast<std::size_t>(id)] = token;
      impl->kind[static_cast<std::size_t>(id)] = 1;
    }
    for (const Impl::Added& a : impl->added) {
      impl->tokens[static_cast<std::size_t>(a.id)] = a.content;
      impl->kind[static_cast<std::size_t>(a.id)] = a.special ? 3 : 2;
    }
    for (std::size_t id = 0; id < size; ++id) {
      if (impl->kind[id] != 0) byte_level::decode_token(impl->tokens[id], impl->bytes[id]);
    }
    impl->pretokenizer = std::make_unique<PreTokenizer>(split_pattern(root, path), path);
    impl->bpe = std::make_unique<BpeModel>(impl->vocab, merges, path);
  } catch (const json::exception& e) {
    throw_error(path, ": malformed tokenizer JSON: ", e.what());
  }
  return Tokenizer(std::move(impl));
}

// Invalid UTF-8 input is first converted the way Python's bytes.decode('utf-8', errors='replace') does (each
// maximal invalid subpart -> U+FFFD); HF only ever tokenizes Python strings, so that is the HF-equivalent input.
std::vector<std::int32_t> Tokenizer::encode(std::string_view text) const {
  const std::string valid = unicode::replace_invalid_utf8(text);
  std::vector<std::int32_t> ids;
  ids.reserve(valid.size() / 3 + 4);
  std::vector<std::string_view> pieces;
  impl_->split_added(
      valid,
      [&](std::string_view segment) {
        const std::string normalized = unicode::nfc(segment);
        pieces.clear();
        impl_->pretokenizer->split(normalized, pieces);
        for (const std::string_view piece : pieces) impl_->bpe->encode(piece, ids);
      },
      [&](const Impl::Added& a) { ids.push_back(a.id); });
  return ids;
}

std::string Tokenizer::normalize(std::string_view text) const {
  const std::string valid = unicode::replace_invalid_utf8(text);
  std::string out;
  out.reserve(valid.size());
  impl_->split_added(
      valid, [&](std::string_view segment) { out += unicode::nfc(segment); },
      [&](const Impl::Added& a) { out += a.content; });
  return out;
}

std::string Tokenizer::decode(const std::vector<std::int32_t>& ids, bool skip_special_tokens) const {
  std::string bytes;
  for (const std::int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    const unsigned char kind = impl_->kind[static_cast<std::size_t>(id)];
    if (kind == 0 || (skip_special_tokens && kind == 3)) continue;
    bytes += impl_->bytes[static_cast<std::size_t>(id)];
  }
  return unicode::replace_invalid_utf8(bytes);
}

std::optional<std::int32_t> Tokenizer::token_to_id(std::string_view token) const {
  const std::string key(token);
  if (const auto it = impl_->added_by_content.find(key); it != impl_->added_by_content.end()) return it->second;
  if (const auto it = impl_->vocab.find(key); it != impl_->vocab.end()) return it->second;
  return std::nullopt;
}

std::string Tokenizer::id_to_token(std::int32_t id) const {
  if (id < 0 || id >= vocab_size() || impl_->kind[static_cast<std::size_t>(id)] == 0) {
    throw_error(impl_->source, ": token id ", id, " is not in the vocabulary (size ", vocab_size(), ")");
  }
  return impl_->tokens[static_cast<std::size_t>(id)];
}

bool Tokenizer::is_special(std::int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->kind[static_cast<std::size_t>(id)] == 3;
}

std::int32_t Tokenizer::vocab_size() const { return static_cast<std::int32_t>(impl_->kind.size()); }

const std::string& Tokenizer::token_bytes(std::int32_t id) const {
  static const std::string empty;
  if (id < 0 || id >= vocab_size()) return empty;
  return impl_->bytes[static_cast<std::size_t>(id)];
}

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string StreamDecoder::push(std::int32_t id) {
  if (skip_special_tokens_ && tokenizer_->is_special(id)) return {};
  pending_ += tokenizer_->token_bytes(id);
  std::size_t consumed = 0;
  std::string out = unicode::replace_invalid_utf8_prefix(pending_, /*final=*/false, &consumed);
  pending_.erase(0, consumed);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = unicode::replace_invalid_utf8_prefix(pending_, /*final=*/true, nullptr);
  pending_.clear();
  return out;
}

}  // namespace qwen3vl
