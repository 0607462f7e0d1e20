#include "tokenizer/byte_level.h"

#include <algorithm>
#include <array>
#include <limits>
#include <queue>

#include "core/error.h"
#include "tokenizer/unicode_text.h"

namespace qwen3vl {
namespace byte_level {
namespace {

// The alphabet's characters are U+0021..U+0143 (256 + 68 - 1), so the inverse mapping is a small array.
constexpr char32_t kAlphabetEnd = 256 + 68;

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<std::string, 256> to_utf8{};
  std::array<std::int16_t, kAlphabetEnd> to_byte{};  // -1 for characters outside the alphabet
  Tables() {
    to_byte.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_char[b] = printable ? static_cast<char32_t>(b) : next++;
      unicode::append_utf8(to_utf8[b], to_char[b]);
      to_byte[to_char[b]] = static_cast<std::int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

char32_t byte_to_char(std::uint8_t byte) { return tables().to_char[byte]; }

std::string_view byte_utf8(std::uint8_t byte) { return tables().to_utf8[byte]; }

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
    const char32_t c = unicode::next_code_point(token, pos);
    const int byte = c < kAlphabetEnd ? t.to_byte[c] : -1;
    if (byte < 0) {
      mapped = false;
    } else {
      out.push_back(static_cast<char>(byte));
    }
  }
  bytes = mapped ? std::move(out) : std::string(token);
  return mapped;
}

}  // namespace byte_level

BpeModel::BpeModel(const PackedStrings& merges,
                   const std::function<std::optional<std::int32_t>(std::string_view)>& token_id,
                   const std::string& source) {
  for (int b = 0; b < 256; ++b) {
    byte_ids_[b] = token_id(byte_level::byte_utf8(static_cast<std::uint8_t>(b))).value_or(-1);
  }

  // The rules grouped by left token id with a counting sort (the left ids resolved first, so that each rule can then
  // go straight into its row), then each row sorted by (right id, rank) for find().
  const std::size_t count = merges.size() / 2;
  if (count > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
    throw_error(source, ": model.merges has too many rules");
  }
  std::vector<std::int32_t> left(count);  // -1 where the token is missing (reported below, in rank order)
  std::int32_t max_left = -1;
  for (std::size_t rank = 0; rank < count; ++rank) {
    left[rank] = token_id(merges[2 * rank]).value_or(-1);
    max_left = std::max(max_left, left[rank]);
  }
  row_begin_.assign(static_cast<std::size_t>(max_left) + 2, 0);
  for (const std::int32_t a : left) {
    if (a >= 0) ++row_begin_[static_cast<std::size_t>(a) + 1];
  }
  for (std::size_t a = 1; a < row_begin_.size(); ++a) row_begin_[a] += row_begin_[a - 1];
  merges_.resize(count);
  std::vector<std::uint32_t> next(row_begin_.begin(), row_begin_.end() - 1);  // next free place in each row
  std::string joined;
  for (std::size_t rank = 0; rank < count; ++rank) {
    const std::string_view a = merges[2 * rank], b = merges[2 * rank + 1];
    joined.assign(a).append(b);
    const auto ib = token_id(b), im = token_id(joined);
    if (left[rank] < 0 || !ib || !im) {
      throw_error(source, ": model.merges[", rank, "] (\"", a, "\", \"", b,
                  "\") uses a token missing from model.vocab");
    }
    merges_[next[static_cast<std::size_t>(left[rank])]++] = Merge{*ib, static_cast<std::int32_t>(rank), *im};
  }
  for (std::size_t a = 0; a + 1 < row_begin_.size(); ++a) {
    std::sort(merges_.begin() + row_begin_[a], merges_.begin() + row_begin_[a + 1], [](const Merge& x, const Merge& y) {
      return x.right != y.right ? x.right < y.right : x.rank < y.rank;
    });
  }
}

// As in HF (the pairs are collected into a hash map in order), a repeated pair keeps its last rank: the last of the
// equal pairs in the row.
const BpeModel::Merge* BpeModel::find(std::int32_t left, std::int32_t right) const {
  if (left < 0 || static_cast<std::size_t>(left) + 1 >= row_begin_.size()) return nullptr;
  const Merge* begin = merges_.data() + row_begin_[static_cast<std::size_t>(left)];
  const Merge* end = merges_.data() + row_begin_[static_cast<std::size_t>(left) + 1];
  const Merge* after = std::upper_bound(begin, end, right, [](std::int32_t r, const Merge& m) { return r < m.right; });
  return after != begin && after[-1].right == right ? after - 1 : nullptr;
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
