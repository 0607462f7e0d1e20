#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/unicode_text.h"
#include "tokenizer/vocabulary.h"

namespace qwen3vl {

using nlohmann::json;

struct Tokenizer::Impl {
  std::string source;
  struct Added {
    std::string content;
    std::int32_t id;
    bool special;
  };
  std::vector<Added> added;                                   // sorted by content length, longest first
  std::unordered_map<std::string, std::int32_t> added_by_content;
  std::array<bool, 256> added_first_byte{};                   // some added token starts with this byte
  Vocabulary vocab;                                           // every id's bytes and kind; model vocab lookup
  std::unique_ptr<PreTokenizer> pretokenizer;
  std::unique_ptr<BpeModel> bpe;

  static Vocabulary build_vocabulary(const TokenizerJson& file, const std::vector<Added>& added, std::int32_t size,
                                     const std::string& path);

  // Longest added token starting at text[pos], or nullptr; with skip_special, only the non-special ones.
  const Added* added_at(std::string_view text, std::size_t pos, bool skip_special) const {
    if (!added_first_byte[static_cast<unsigned char>(text[pos])]) return nullptr;
    for (const Added& a : added) {  // longest first, so the first hit is the longest match
      if (skip_special && a.special) continue;
      if (text.compare(pos, a.content.size(), a.content) == 0) return &a;
    }
    return nullptr;
  }

  // Calls on_text(segment) for the text between added tokens and on_added(token) for each added token, in order.
  // skip_special leaves the special ones in the text (HF's encode_special_tokens).
  template <typename OnText, typename OnAdded>
  void split_added(std::string_view text, bool skip_special, OnText on_text, OnAdded on_added) const {
    std::size_t start = 0;
    for (std::size_t pos = 0; pos < text.size();) {
      if (const Added* a = added_at(text, pos, skip_special)) {
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

}  // namespace

// The token of each id: its added token if it has one, else its model.vocab key. Only one raw string per id is kept,
// so two different strings for one id are rejected (HF would give one of them another id).
Vocabulary Tokenizer::Impl::build_vocabulary(const TokenizerJson& file, const std::vector<Added>& added,
                                             std::int32_t size, const std::string& path) {
  std::vector<std::int32_t> vocab_entry(static_cast<std::size_t>(size), -1);  // id -> its index in model.vocab
  for (std::size_t e = 0; e < file.vocab_ids.size(); ++e) {
    std::int32_t& slot = vocab_entry[static_cast<std::size_t>(file.vocab_ids[e])];
    const std::string_view token = file.vocab_tokens[e];
    if (slot >= 0 && file.vocab_tokens[static_cast<std::size_t>(slot)] != token) {
      throw_error(path, ": model.vocab[\"", file.vocab_tokens[static_cast<std::size_t>(slot)], "\"] and model.vocab[\"",
                  token, "\"] have the same id ", file.vocab_ids[e], " (not supported)");
    }
    slot = static_cast<std::int32_t>(e);
  }
  std::unordered_map<std::int32_t, const Added*> added_by_id;
  for (const Added& a : added) {
    const std::int32_t e = vocab_entry[static_cast<std::size_t>(a.id)];
    if (e >= 0 && file.vocab_tokens[static_cast<std::size_t>(e)] != a.content) {
      throw_error(path, ": added token \"", a.content, "\" has the id ", a.id, " of model.vocab[\"",
                  file.vocab_tokens[static_cast<std::size_t>(e)], "\"] (not supported)");
    }
    added_by_id[a.id] = &a;
  }
  Vocabulary vocab(size, [&](std::int32_t id) -> Vocabulary::Token {
    if (const auto it = added_by_id.find(id); it != added_by_id.end()) {
      return {it->second->content, it->second->special ? Vocabulary::Kind::special : Vocabulary::Kind::added};
    }
    const std::int32_t e = vocab_entry[static_cast<std::size_t>(id)];
    if (e < 0) return {{}, Vocabulary::Kind::none};
    return {file.vocab_tokens[static_cast<std::size_t>(e)], Vocabulary::Kind::vocab};
  });
  vocab.index_vocab(file.vocab_ids);
  return vocab;
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::string& path) {
  TokenizerJson file = read_tokenizer_json(path);
  const json& root = file.root;
  auto impl = std::make_unique<Impl>();
  impl->source = path;
  try {
    const auto normalizer = root.find("normalizer");
    if (normalizer != root.end() && !normalizer->is_null() && normalizer->value("type", "") != "NFC") {
      throw_error(path, ": normalizer: only NFC (or none) is supported");
    }
    const json& model = require(root, "model", "", path);
    check_model(model, path);
    if (!require(model, "vocab", "model.", path).is_object()) throw_error(path, ": model.vocab must be an object");
    if (!file.vocab_error.empty()) throw_error(path, ": ", file.vocab_error);
    if (!require(model, "merges", "model.", path).is_array()) throw_error(path, ": model.merges must be an array");
    if (!file.merges_error.empty()) throw_error(path, ": ", file.merges_error);
    std::int32_t max_id = -1;
    for (const std::int32_t id : file.vocab_ids) max_id = std::max(max_id, id);

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

    impl->vocab = Impl::build_vocabulary(file, impl->added, max_id + 1, path);
    // Freed before the merges are resolved, which lowers the loading's peak memory.
    std::vector<std::int32_t>().swap(file.vocab_ids);
    file.vocab_tokens.clear();

    impl->pretokenizer = std::make_unique<PreTokenizer>(split_pattern(root, path), path);
    const Vocabulary& vocab = impl->vocab;
    impl->bpe = std::make_unique<BpeModel>(file.merges, [&vocab](std::string_view raw) { return vocab.find(raw); },
                                           path);
  } catch (const json::exception& e) {
    throw_error(path, ": malformed tokenizer JSON: ", e.what());
  }
  return Tokenizer(std::move(impl));
}

// Invalid UTF-8 input is first converted the way Python's bytes.decode('utf-8', errors='replace') does (each
// maximal invalid subpart -> U+FFFD); HF only ever tokenizes Python strings, so that is the HF-equivalent input.
std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool split_special_tokens) const {
  const std::string valid = unicode::replace_invalid_utf8(text);
  std::vector<std::int32_t> ids;
  ids.reserve(valid.size() / 3 + 4);
  std::vector<std::string_view> pieces;
  impl_->split_added(
      valid, split_special_tokens,
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
      valid, /*skip_special=*/false, [&](std::string_view segment) { out += unicode::nfc(segment); },
      [&](const Impl::Added& a) { out += a.content; });
  return out;
}

std::string Tokenizer::decode(const std::vector<std::int32_t>& ids, bool skip_special_tokens) const {
  std::string bytes;
  for (const std::int32_t id : ids) {
    const Vocabulary::Kind kind = impl_->vocab.kind(id);  // Kind::none also for ids out of range
    if (kind == Vocabulary::Kind::none || (skip_special_tokens && kind == Vocabulary::Kind::special)) continue;
    bytes += impl_->vocab.bytes(id);
  }
  return unicode::replace_invalid_utf8(bytes);
}

std::optional<std::int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const auto it = impl_->added_by_content.find(std::string(token)); it != impl_->added_by_content.end()) {
    return it->second;
  }
  return impl_->vocab.find(token);
}

std::string Tokenizer::id_to_token(std::int32_t id) const {
  if (impl_->vocab.kind(id) == Vocabulary::Kind::none) {
    throw_error(impl_->source, ": token id ", id, " is not in the vocabulary (size ", vocab_size(), ")");
  }
  return impl_->vocab.raw(id);
}

bool Tokenizer::is_special(std::int32_t id) const { return impl_->vocab.kind(id) == Vocabulary::Kind::special; }

std::int32_t Tokenizer::vocab_size() const { return impl_->vocab.size(); }

std::string_view Tokenizer::token_bytes(std::int32_t id) const { return impl_->vocab.bytes(id); }

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
