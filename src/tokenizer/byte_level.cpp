#include "tokenizer/byte_level.h"

#include <array>
#include <queue>

#include "core/error.h"
#include "tokenizer/unicode_text.h"

namespace qwen3vl {
namespace byte_level {
namespace {

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<std::string, 256> to_utf8{};
  std::unordered_map<char32_t, std::uint8_t> to_byte;
  Tables() {
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_char[b] = printable ? static_cast<char32_t>(b) : next++;
      unicode::append_utf8(to_utf8[b], to_char[b]);
      to_byte[to_char[b]] = static_cast<std::uint8_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

char32_t byte_to_char(std::uint8_t byte) { return tables().to_char[byte]; }

std::string encode_bytes(std::string_view bytes) {
  const Tables& t = tables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) out += t.to_utf8[static_cast<std::uint8_t>(c)];
  return out;
}

bool decode_token(std::string_view token, std::string& bytes) {
  const Tables& t = tables();
  std::string out;
  out.reserve(token.size());
  bool mapped = unicode::is_valid_utf8(token);
  for (std::size_t pos = 0; mapped && pos < token.size();) {
    const auto it = t.to_byte.find(unicode::next_code_point(token, pos));
    if (it == t.to_byte.end()) {
      mapped = false;
    } else {
      out.push_back(static_cast<char>(it->second));
    }
  }
  bytes = mapped ? std::move(out) : std::string(token);
  return mapped;
}

}  // namespace byte_level

BpeModel::BpeModel(const std::unordered_map<std::string, std::int32_t>& vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges, const std::string& source) {
  for (int b = 0; b < 256; ++b) {
    std::string s;
    unicode::append_utf8(s, byte_level::byte_to_char(static_cast<std::uint8_t>(b)));
    const auto it = vocab.find(s);
    byte_ids_[b] = it == vocab.end() ? -1 : it->second;
  }
  merges_.reserve(merges.size() * 2);
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const auto ia = vocab.find(a), ib = vocab.find(b), im = vocab.find(a + b);
    if (ia == vocab.end() || ib == vocab.end() || im == vocab.end()) {
      throw_error(source, ": model.merges[", rank, "] (\"", a, "\", \"", b, "\") uses a token missing from model.vocab");
    }
    // As in HF (the pairs are collected into a hash map in order), a repeated pair keeps its last rank.
    merges_.insert_or_assign(key(ia->second, ib->second), Merge{static_cast<std::int32_t>(rank), im->second});
  }
}

void BpeModel::encode(std::string_view piece, std::vector<std::int32_t>& ids) const {
  if (piece.empty()) return;
  if (piece.size() == 1) {
    const std::int32_t id = byte_ids_[static_cast<std::uint8_t>(piece[0])];
    if (id >= 0) ids.push_back(id);
    return;
  }
  constexpr std::size_t kMaxCachedPiece = 256;
  constexpr std::size_t kMaxCacheEntries = 1 << 17;
  const bool cacheable = piece.size() <= kMaxCachedPiece;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(std::string(piece));
    if (it != cache_.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<std::int32_t> word;
  merge_word(piece, word);
  ids.insert(ids.end(), word.begin(), word.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::string(piece), std::move(word));
  }
}

// HF's Word::merge_all: a min-heap of candidate merges ordered by (rank, position); stale candidates (a side already
// merged away, or the pair changed) are skipped when popped.
void BpeModel::merge_word(std::string_view piece, std::vector<std::int32_t>& out) const {
  struct Symbol {
    std::int32_t id;
    std::int32_t prev;
    std::int32_t next;
    bool alive;
  };
  struct Candidate {
    std::int32_t rank;
    std::int32_t pos;
    std::int32_t id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<Symbol> symbols;
  symbols.reserve(piece.size());
  for (const char c : piece) {
    const std::int32_t id = byte_ids_[static_cast<std::uint8_t>(c)];
    if (id < 0) continue;  // HF drops characters missing from the vocab when there is no unk token
    const auto index = static_cast<std::int32_t>(symbols.size());
    symbols.push_back(Symbol{id, index - 1, index + 1, true});
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto find = [this](std::int32_t a, std::int32_t b) -> const Merge* {
    const auto it = merges_.find(key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  };
  for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const Merge* m = find(symbols[i].id, symbols[i + 1].id)) {
      queue.push(Candidate{m->rank, static_cast<std::int32_t>(i), m->id});
    }
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<std::size_t>(top.pos)];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[static_cast<std::size_t>(left.next)];
    const Merge* m = find(left.id, right.id);
    if (m == nullptr || m->id != top.id) continue;
    left.id = top.id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) symbols[static_cast<std::size_t>(left.next)].prev = top.pos;
    if (left.prev >= 0) {
      if (const Merge* pm = find(symbols[static_cast<std::size_t>(left.prev)].id, left.id)) {
        queue.push(Candidate{pm->rank, left.prev, pm->id});
      }
    }
    if (left.next >= 0) {
      if (const Merge* nm = find(left.id, symbols[static_cast<std::size_t>(left.next)].id)) {
        queue.push(Candidate{nm->rank, top.pos, nm->id});
      }
    }
  }
  for (const Symbol& s : symbols) {
    if (s.alive) out.push_back(s.id);
  }
}

}  // namespace qwen3vl
