#include "tokenizer/vocabulary.h"

#include "tokenizer/byte_level.h"

namespace qwen3vl {
namespace {

constexpr std::uint8_t kKindMask = 3;
constexpr std::uint8_t kRawIsBytes = 4;  // not a byte-level string: the raw string is the bytes themselves

// 64-bit FNV-1a, fed piece by piece so that a token's raw string can be hashed from its bytes without building it.
struct Fnv1a {
  std::uint64_t value = 0xcbf29ce484222325ull;
  void add(std::string_view s) {
    for (const char c : s) {
      value ^= static_cast<unsigned char>(c);
      value *= 0x100000001b3ull;
    }
  }
};

}  // namespace

Vocabulary::Vocabulary(std::int32_t size, const std::function<Token(std::int32_t)>& token_of) {
  kinds_.assign(static_cast<std::size_t>(size), 0);
  std::string decoded;
  std::size_t total = 0;  // decoding twice (a few ms) sizes the buffer exactly, where growing it would leave slack
  for (std::int32_t id = 0; id < size; ++id) {
    byte_level::decode_token(token_of(id).raw, decoded);
    total += decoded.size();
  }
  bytes_.reserve(static_cast<std::size_t>(size), total);
  for (std::int32_t id = 0; id < size; ++id) {
    const Token token = token_of(id);
    if (token.kind == Kind::none) {
      bytes_.push_back({});
      continue;
    }
    const bool byte_level = byte_level::decode_token(token.raw, decoded);
    bytes_.push_back(decoded);
    kinds_[static_cast<std::size_t>(id)] = static_cast<std::uint8_t>(token.kind) | (byte_level ? 0 : kRawIsBytes);
  }
}

void Vocabulary::index_vocab(const std::vector<std::int32_t>& ids) {
  slot_bits_ = 1;
  while ((std::size_t{1} << slot_bits_) < ids.size() + ids.size() / 3 + 1) ++slot_bits_;  // at most 3/4 full
  slots_.assign(std::size_t{1} << slot_bits_, -1);
  const std::size_t mask = slots_.size() - 1;
  // Two ids have the same raw string exactly when they have the same bytes and both are (or are not) byte-level.
  const auto same_raw = [this](std::int32_t x, std::int32_t y) {
    const auto ux = static_cast<std::size_t>(x), uy = static_cast<std::size_t>(y);
    return (kinds_[ux] & kRawIsBytes) == (kinds_[uy] & kRawIsBytes) && bytes_[ux] == bytes_[uy];
  };
  for (const std::int32_t id : ids) {
    std::size_t s = slot_of(raw_hash(id));
    while (slots_[s] >= 0 && !same_raw(slots_[s], id)) s = (s + 1) & mask;
    const std::int32_t replaced = slots_[s];
    if (replaced >= 0 && replaced != id && kind(replaced) == Kind::vocab) {
      kinds_[static_cast<std::size_t>(replaced)] = 0;  // Kind::none
    }
    slots_[s] = id;
  }
}

Vocabulary::Kind Vocabulary::kind(std::int32_t id) const {
  if (id < 0 || id >= size()) return Kind::none;
  return static_cast<Kind>(kinds_[static_cast<std::size_t>(id)] & kKindMask);
}

std::string_view Vocabulary::bytes(std::int32_t id) const {
  return kind(id) == Kind::none ? std::string_view() : bytes_[static_cast<std::size_t>(id)];
}

std::string Vocabulary::raw(std::int32_t id) const {
  if (kind(id) == Kind::none) return {};
  const std::string_view b = bytes_[static_cast<std::size_t>(id)];
  return kinds_[static_cast<std::size_t>(id)] & kRawIsBytes ? std::string(b) : byte_level::encode_bytes(b);
}

std::optional<std::int32_t> Vocabulary::find(std::string_view raw) const {
  if (slots_.empty()) return std::nullopt;
  Fnv1a hash;
  hash.add(raw);
  for (std::size_t s = slot_of(hash.value); slots_[s] >= 0; s = (s + 1) & (slots_.size() - 1)) {
    if (raw_equals(slots_[s], raw)) return slots_[s];
  }
  return std::nullopt;
}

bool Vocabulary::raw_equals(std::int32_t id, std::string_view raw) const {
  const std::string_view b = bytes_[static_cast<std::size_t>(id)];
  if (kinds_[static_cast<std::size_t>(id)] & kRawIsBytes) return b == raw;
  std::size_t pos = 0;
  for (const char c : b) {
    const std::string_view piece = byte_level::byte_utf8(static_cast<std::uint8_t>(c));
    if (raw.size() - pos < piece.size() || raw.compare(pos, piece.size(), piece) != 0) return false;
    pos += piece.size();
  }
  return pos == raw.size();
}

std::uint64_t Vocabulary::raw_hash(std::int32_t id) const {
  const std::string_view b = bytes_[static_cast<std::size_t>(id)];
  Fnv1a hash;
  if (kinds_[static_cast<std::size_t>(id)] & kRawIsBytes) {
    hash.add(b);
  } else {
    for (const char c : b) hash.add(byte_level::byte_utf8(static_cast<std::uint8_t>(c)));
  }
  return hash.value;
}

// Fibonacci hashing: the top bits of hash * 2^64/phi, which spreads FNV's weaker low bits over the whole table.
std::size_t Vocabulary::slot_of(std::uint64_t hash) const {
  return static_cast<std::size_t>((hash * 0x9E3779B97F4A7C15ull) >> (64 - slot_bits_));
}

}  // namespace qwen3vl
