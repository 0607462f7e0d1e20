// Tokenizer tests against the real Qwen3 tokenizer.json and HF goldens
// (tests/fixtures/tokenizer/, made by scripts/reference/make_tokenizer_goldens.py).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_text.h"
#include "tokenizer_goldens.h"

namespace qwen3vl {
namespace {

const std::string kTokenizerPath = std::string(QWEN3VL_FIXTURES_DIR) + "/tokenizer/qwen3/tokenizer.json";
const std::string kFixtures = std::string(QWEN3VL_FIXTURES_DIR) + "/tokenizer";

const Tokenizer& tok() {
  static const Tokenizer t = Tokenizer::from_file(kTokenizerPath);
  return t;
}

using Golden = testing::TokenizerGolden;

const std::vector<Golden>& goldens() { return testing::tokenizer_goldens(); }

std::string ids_str(const std::vector<int32_t>& ids) {
  std::ostringstream s;
  for (std::size_t i = 0; i < ids.size(); ++i) s << (i ? "," : "") << ids[i];
  return s.str();
}

TEST(Tokenizer, GoldenCorpusIdsMatchHf) {
  const auto& all = goldens();
  ASSERT_GE(all.size(), 2000u);
  int failures = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto ids = tok().encode(all[i].input);
    if (ids != all[i].ids) {
      ++failures;
      if (failures <= 10) {
        ADD_FAILURE() << "golden " << i << " (" << all[i].cat << ") input \"" << all[i].input << "\"\n  ours: "
                      << ids_str(ids) << "\n  HF:   " << ids_str(all[i].ids);
      }
    }
  }
  EXPECT_EQ(failures, 0) << "of " << all.size() << " goldens";
}

// split_special_tokens against HF's encode_special_tokens on every golden that holds a special token's text: the
// special tokens' text is BPE-tokenized, the non-special added tokens (<think>) still match.
TEST(Tokenizer, SplitSpecialTokensMatchesHf) {
  const auto& split = testing::split_special_goldens();
  ASSERT_GE(split.size(), 300u);
  int failures = 0, differ = 0;
  for (const auto& [index, hf_ids] : split) {
    const Golden& g = goldens().at(index);
    const auto ids = tok().encode(g.input, /*split_special_tokens=*/true);
    differ += ids != g.ids;
    if (ids != hf_ids && ++failures <= 10)
      ADD_FAILURE() << "golden " << index << " (" << g.cat << ") input \"" << g.input << "\"\n  ours: " << ids_str(ids)
                    << "\n  HF:   " << ids_str(hf_ids);
  }
  EXPECT_EQ(failures, 0) << "of " << split.size() << " goldens";
  EXPECT_EQ(differ, static_cast<int>(split.size())) << "each holds a special token, which splitting must change";
}

TEST(Tokenizer, GoldenCorpusCoversEveryCategory) {
  std::map<std::string, int> counts;
  for (const auto& g : goldens()) ++counts[g.cat];
  for (const char* cat : {"latin", "latin_nfd", "cyrillic", "greek", "arabic", "hebrew", "devanagari", "thai", "cjk",
                          "korean", "japanese", "emoji", "code", "contractions", "whitespace", "digits",
                          "special_tokens", "special_partial", "invalid_utf8", "nfc_unicode9", "unicode16_classes",
                          "random_mix"}) {
    EXPECT_GT(counts[cat], 0) << cat;
  }
}

TEST(Tokenizer, GoldenDecodeMatchesHfAndRoundTrips) {
  int failures = 0;
  for (std::size_t i = 0; i < goldens().size(); ++i) {
    const Golden& g = goldens()[i];
    const std::string decoded = tok().decode(g.ids);
    const std::string skipped = tok().decode(g.ids, /*skip_special_tokens=*/true);
    const std::string normalized = tok().normalize(g.input);
    const bool ok = decoded == g.decoded && skipped == g.decoded_skip && decoded == normalized;
    if (!ok && ++failures <= 10) {
      ADD_FAILURE() << "golden " << i << " (" << g.cat << "): decode \"" << decoded << "\" HF \"" << g.decoded
                    << "\" skip \"" << skipped << "\" HF skip \"" << g.decoded_skip << "\" normalized \""
                    << normalized << "\"";
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(Tokenizer, CorpusTokenizesFast) {
  std::vector<std::string> inputs;
  for (const auto& g : goldens()) inputs.push_back(g.input);
  // A fresh tokenizer so the BPE cache starts cold.
  const Tokenizer fresh = Tokenizer::from_file(kTokenizerPath);
  const auto t0 = std::chrono::steady_clock::now();
  std::size_t total = 0;
  for (const auto& s : inputs) total += fresh.encode(s).size();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ tokenizer ] %zu strings, %zu tokens in %.1f ms (cold cache)\n", inputs.size(), total,
              seconds * 1e3);
  EXPECT_GT(total, 0u);
#ifdef NDEBUG
  EXPECT_LT(seconds, 0.5);
#else
  EXPECT_LT(seconds, 5.0);
#endif
}

struct SpecialToken {
  const char* text;
  int32_t id;
  bool special;
};
constexpr SpecialToken kSpecials[] = {
    {"<|endoftext|>", 151643, true},       {"<|im_start|>", 151644, true},      {"<|im_end|>", 151645, true},
    {"<|object_ref_start|>", 151646, true}, {"<|object_ref_end|>", 151647, true}, {"<|box_start|>", 151648, true},
    {"<|box_end|>", 151649, true},         {"<|quad_start|>", 151650, true},    {"<|quad_end|>", 151651, true},
    {"<|vision_start|>", 151652, true},    {"<|vision_end|>", 151653, true},    {"<|vision_pad|>", 151654, true},
    {"<|image_pad|>", 151655, true},       {"<|video_pad|>", 151656, true},     {"<tool_call>", 151657, false},
    {"</tool_call>", 151658, false},       {"<|fim_prefix|>", 151659, false},   {"<|fim_middle|>", 151660, false},
    {"<|fim_suffix|>", 151661, false},     {"<|fim_pad|>", 151662, false},      {"<|repo_name|>", 151663, false},
    {"<|file_sep|>", 151664, false},       {"<tool_response>", 151665, false},  {"</tool_response>", 151666, false},
    {"<think>", 151667, false},            {"</think>", 151668, false},
};

TEST(Tokenizer, SpecialTokenIdsOfQwen3) {
  EXPECT_EQ(tok().vocab_size(), 151669);
  for (const auto& s : kSpecials) {
    EXPECT_EQ(tok().token_to_id(s.text), s.id) << s.text;
    EXPECT_EQ(tok().id_to_token(s.id), s.text);
    EXPECT_EQ(tok().is_special(s.id), s.special) << s.text;
    EXPECT_EQ(tok().encode(s.text), std::vector<int32_t>{s.id}) << s.text;
    EXPECT_EQ(tok().decode({s.id}), s.text);
  }
  EXPECT_FALSE(tok().is_special(0));
  EXPECT_FALSE(tok().is_special(151669));
  EXPECT_FALSE(tok().is_special(-1));
}

TEST(Tokenizer, VocabLookups) {
  const auto hello = tok().encode(" hello");
  ASSERT_EQ(hello.size(), 1u);
  EXPECT_EQ(tok().id_to_token(hello[0]), "\xC4\xA0hello");  // "Ġhello"
  EXPECT_EQ(tok().token_to_id("\xC4\xA0hello"), hello[0]);
  EXPECT_EQ(tok().token_to_id("!"), 0);
  EXPECT_EQ(tok().id_to_token(0), "!");
  EXPECT_FALSE(tok().token_to_id("definitely not a token").has_value());
  EXPECT_THROW(tok().id_to_token(151669), Error);
  EXPECT_THROW(tok().id_to_token(-1), Error);
  // Digits are split one per piece (\p{N}).
  EXPECT_EQ(tok().encode("2024").size(), 4u);
  // Padding rows of the embedding (>= vocab_size) decode to nothing, as in HF.
  EXPECT_EQ(tok().decode({tok().encode("a")[0], 151700, 151935}), "a");
}

TEST(Tokenizer, EveryTokenStringMapsBackToItsId) {
  // The token table keeps bytes only and rebuilds token strings from them; check that for the whole vocabulary.
  for (int32_t id = 0; id < tok().vocab_size(); ++id) {
    const std::string token = tok().id_to_token(id);
    ASSERT_EQ(tok().token_to_id(token), id) << token;
    ASSERT_EQ(tok().decode({id}), unicode::replace_invalid_utf8(tok().token_bytes(id))) << token;
  }
}

TEST(Tokenizer, SkipSpecialTokensDropsOnlySpecialIds) {
  std::vector<int32_t> ids = {151644};  // <|im_start|>
  for (const int32_t id : tok().encode("assistant\nHi")) ids.push_back(id);
  ids.push_back(151667);  // <think> (special=false)
  ids.push_back(151655);  // <|image_pad|>
  ids.push_back(151658);  // </tool_call> (special=false)
  ids.push_back(151645);  // <|im_end|>
  EXPECT_EQ(tok().decode(ids), "<|im_start|>assistant\nHi<think><|image_pad|></tool_call><|im_end|>");
  EXPECT_EQ(tok().decode(ids, true), "assistant\nHi<think></tool_call>");
}

TEST(Tokenizer, AddedTokensAreMatchedBeforeNormalizationAndNeverSplit) {
  // '>' + U+0338 would compose to U+226F under NFC; HF matches <|im_end|> on the raw text first.
  const auto ids = tok().encode("<|im_end|>\xCC\xB8");
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], 151645);
  // Partial special tokens are ordinary text.
  for (const int32_t id : tok().encode("<|im_sta <think <|image_pad|")) EXPECT_LT(id, 151643);
  // Adjacent added tokens.
  EXPECT_EQ(tok().encode("<think></think><|im_end|>"), (std::vector<int32_t>{151667, 151668, 151645}));
}

TEST(Tokenizer, InvalidUtf8IsReplacedLikePython) {
  using unicode::replace_invalid_utf8;
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(replace_invalid_utf8("abc"), "abc");
  EXPECT_EQ(replace_invalid_utf8("\xFF"), r);
  EXPECT_EQ(replace_invalid_utf8("\xE2\x82"), r);                  // truncated: one replacement
  EXPECT_EQ(replace_invalid_utf8("\xE2\x82 x"), r + " x");
  EXPECT_EQ(replace_invalid_utf8("\xED\xA0\x80"), r + r + r);     // surrogate: per byte
  EXPECT_EQ(replace_invalid_utf8("\xE0\x80\xAF"), r + r + r);     // overlong
  EXPECT_EQ(replace_invalid_utf8("\xF0\x9F\x98\x80\x80"), "\xF0\x9F\x98\x80" + r);
  EXPECT_EQ(replace_invalid_utf8("\xF4\x90\x80\x80"), r + r + r + r);
  EXPECT_EQ(replace_invalid_utf8(std::string("a\0b", 3)), std::string("a\0b", 3));
  EXPECT_EQ(tok().encode("caf\xE9"), tok().encode("caf\xEF\xBF\xBD"));
}

// The concatenated stream output equals decode(), and no push returns a partial UTF-8 character.
void check_stream(const std::vector<int32_t>& ids, bool skip_special, int* held_back) {
  StreamDecoder stream(tok(), skip_special);
  std::string all;
  for (const int32_t id : ids) {
    const std::string piece = stream.push(id);
    EXPECT_TRUE(unicode::is_valid_utf8(piece));
    if (piece.empty() && !tok().token_bytes(id).empty()) ++*held_back;
    all += piece;
  }
  const std::string rest = stream.flush();
  EXPECT_TRUE(unicode::is_valid_utf8(rest));
  all += rest;
  EXPECT_EQ(all, tok().decode(ids, skip_special));
  EXPECT_EQ(stream.flush(), "");
}

TEST(Tokenizer, StreamDecoderEmitsWholeCharacters) {
  const std::string text =
      "👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵 罕见字：𠀀𠀁𪚥𬺰 東京都渋谷区 <|im_end|> 안녕하세요 🥰🤯 नमस्ते";
  const auto ids = tok().encode(text);
  int held_back = 0;
  check_stream(ids, false, &held_back);
  check_stream(ids, true, &held_back);
  // The test is only meaningful if some tokens end inside a character.
  EXPECT_GT(held_back, 0);

  // Token by token over a lone rare character that BPE leaves split: nothing until flush, which yields U+FFFD.
  std::vector<int32_t> split_char;
  for (const char* c : {"\xF0\xAA\x9A\xA5", "\xF0\xA0\x80\x81", "\xF0\xAC\xBA\xB0", "\xF0\xB0\xBB\x9E"}) {
    split_char = tok().encode(c);
    if (split_char.size() >= 2) break;
  }
  ASSERT_GE(split_char.size(), 2u);
  StreamDecoder stream(tok());
  EXPECT_EQ(stream.push(split_char[0]), "");
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD");

  for (const auto& g : goldens()) {
    if (g.cat == "emoji" || g.cat == "cjk" || g.cat == "invalid_utf8" || g.cat == "random_mix") {
      check_stream(g.ids, false, &held_back);
    }
  }
}

TEST(Tokenizer, LongInputs) {
  for (const std::string& text : {std::string(100000, ' '), std::string(100000, 'a'), std::string(50000, '7'),
                                  std::string(30000, '!') + "\r\n", std::string(20000, '\n') + "x"}) {
    const auto ids = tok().encode(text);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(tok().decode(ids), text);
  }
  EXPECT_EQ(tok().encode(std::string(50000, '7')).size(), 50000u);
  EXPECT_TRUE(tok().encode("").empty());
  EXPECT_EQ(tok().decode({}), "");
}

TEST(Tokenizer, ConcurrentEncodeIsConsistent) {
  std::vector<std::vector<int32_t>> expected;
  for (std::size_t i = 0; i < 400; ++i) expected.push_back(goldens()[i].ids);
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  const Tokenizer fresh = Tokenizer::from_file(kTokenizerPath);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t i = 0; i < expected.size(); ++i) {
        if (fresh.encode(goldens()[i].input) != expected[i]) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

// PCRE2 (with our extra ranges) must classify every code point as HF's Oniguruma does.
TEST(Tokenizer, PretokenizerClassesMatchHf) {
  std::ifstream in(kFixtures + "/hf_unicode_classes.json");
  ASSERT_TRUE(in.good());
  const auto classes = nlohmann::json::parse(in);
  // Every code point, separated by U+0001 (in none of the classes). Splitting with a one-character class isolates
  // each matching code point as its own piece; every gap piece contains a U+0001.
  std::string all;
  for (char32_t c = 1; c < 0x110000; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    unicode::append_utf8(all, c);
    all += '\x01';
  }
  for (const auto& [name, pattern] : {std::pair<std::string, std::string>{"L", "\\p{L}"}, {"N", "\\p{N}"},
                                      {"S", "\\s"}}) {
    std::vector<bool> expected(0x110000, false);
    std::size_t expected_count = 0;
    for (const auto& r : classes.at(name)) {
      for (uint32_t c = r[0].get<uint32_t>(); c <= r[1].get<uint32_t>(); ++c) expected[c] = true, ++expected_count;
    }
    const PreTokenizer pre(pattern, "test");
    std::vector<std::string_view> pieces;
    pre.split(all, pieces);
    std::vector<bool> matched(0x110000, false);
    std::size_t matched_count = 0;
    for (const auto piece : pieces) {
      if (piece.find('\x01') != std::string_view::npos) continue;
      std::size_t pos = 0;
      matched[unicode::next_code_point(piece, pos)] = true;
      ++matched_count;
      EXPECT_EQ(pos, piece.size());
    }
    EXPECT_EQ(matched_count, expected_count) << name;
    int wrong = 0;
    for (char32_t c = 1; c < 0x110000; ++c) {
      if (matched[c] != expected[c] && ++wrong <= 5) {
        ADD_FAILURE() << name << ": U+" << std::hex << static_cast<uint32_t>(c) << " HF says " << expected[c];
      }
    }
    EXPECT_EQ(wrong, 0) << name;
  }
}

TEST(Tokenizer, PatternTranslationKeepsStructure) {
  const std::string t = PreTokenizer::translate_pattern("[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\s+(?!\\S)|(?i:'s)");
  EXPECT_NE(t.find("[^\\r\\n\\p{L}"), std::string::npos);
  EXPECT_NE(t.find("(?i:'s)"), std::string::npos);
  EXPECT_EQ(t.find("\\s"), std::string::npos);  // \s replaced by Oniguruma's White_Space set
  EXPECT_EQ(t.find("\\S"), std::string::npos);
}

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "qwen3vl_tok_" + std::to_string(::getpid()) + "_" + name;
}

void expect_error_mentions(const std::string& path, const std::string& what) {
  try {
    (void)Tokenizer::from_file(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one-line message expected: " << msg;
  }
}

TEST(Tokenizer, LoadErrorsNameTheFile) {
  expect_error_mentions(temp_path("does_not_exist.json"), "cannot open");

  const std::string corrupt = temp_path("corrupt.json");
  std::ofstream(corrupt) << "{\"model\": {\"vocab\": {\"a\": 0,";
  expect_error_mentions(corrupt, "invalid tokenizer JSON");

  const std::string no_vocab = temp_path("no_vocab.json");
  std::ofstream(no_vocab) << R"({"added_tokens": [], "model": {"type": "BPE", "merges": []},
      "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated"}})";
  expect_error_mentions(no_vocab, "model.vocab");

  const std::string bad_merge = temp_path("bad_merge.json");
  std::ofstream(bad_merge) << R"({"added_tokens": [], "model": {"type": "BPE", "vocab": {"a": 0, "b": 1},
      "merges": ["a b"]}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated"}})";
  expect_error_mentions(bad_merge, "model.merges[0]");
  for (const auto& p : {corrupt, no_vocab, bad_merge}) std::remove(p.c_str());
}

// A small tokenizer.json with the given model.vocab, model.merges and added_tokens (JSON text), plus `extra` members.
std::string small_tokenizer_json(const std::string& vocab, const std::string& merges,
                                 const std::string& added = "[]", const std::string& extra = "") {
  return R"({"added_tokens": )" + added + R"(, "model": {"type": "BPE", "vocab": )" + vocab + R"(, "merges": )" +
         merges + R"(}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": " ?\\p{L}+|\\s+"},
         "behavior": "Isolated"})" + extra + "}";
}

Tokenizer load_text(const std::string& name, const std::string& text) {
  const std::string path = temp_path(name);
  std::ofstream(path) << text;
  try {
    Tokenizer t = Tokenizer::from_file(path);
    std::remove(path.c_str());
    return t;
  } catch (...) {
    std::remove(path.c_str());
    throw;
  }
}

TEST(Tokenizer, LoadErrorsNameTheTableEntry) {
  const std::string abc = R"({"a": 0, "b": 1, "ab": 2})";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {small_tokenizer_json(R"({"a": 0, "b": -1})", "[]"), R"(model.vocab["b"] must be a non-negative integer)"},
      {small_tokenizer_json(R"({"a": 0, "b": 1.5})", "[]"), R"(model.vocab["b"] must be a non-negative integer)"},
      {small_tokenizer_json(R"({"a": 0, "b": [1]})", "[]"), R"(model.vocab["b"] must be a non-negative integer)"},
      {small_tokenizer_json(R"({"a": 0, "b": 16777217})", "[]"), R"(model.vocab["b"] must be a non-negative)"},
      {small_tokenizer_json("[]", "[]"), "model.vocab must be an object"},
      {small_tokenizer_json(abc, R"("a b")"), "model.merges must be an array"},
      {small_tokenizer_json(abc, R"(["a b", "ab"])"), "model.merges[1] must be two tokens separated by one space"},
      {small_tokenizer_json(abc, R"(["a b", "a b b"])"), "model.merges[1] must be two tokens separated by one space"},
      {small_tokenizer_json(abc, R"(["a b", ["a"]])"), R"(model.merges[1] must be "a b" or ["a", "b"])"},
      {small_tokenizer_json(abc, R"(["a b", ["a", "b", "b"]])"), "model.merges[1] must be"},
      {small_tokenizer_json(abc, R"(["a b", ["a", 1]])"), "model.merges[1] must be"},
      {small_tokenizer_json(abc, R"(["a b", ["a", ["b"]]])"), "model.merges[1] must be"},
      {small_tokenizer_json(abc, R"([{"a": "b"}, 7])"), "model.merges[0] must be"},
      {small_tokenizer_json(abc, R"([["a", "b"], 7])"), "model.merges[1] must be"},
      {small_tokenizer_json(abc, R"(["a b", "b a"])"), R"(model.merges[1] ("b", "a") uses a token missing)"},
      {small_tokenizer_json(R"({"a": 0, "b": 0})", "[]"), R"(model.vocab["a"] and model.vocab["b"] have the same id)"},
      {small_tokenizer_json(abc, "[]", R"([{"id": 1, "content": "<x>"}])"), R"(added token "<x>" has the id 1)"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string path = temp_path("table_error_" + std::to_string(i) + ".json");
    std::ofstream(path) << cases[i].first;
    expect_error_mentions(path, cases[i].second);
    std::remove(path.c_str());
  }
}

TEST(Tokenizer, RepeatedEntriesKeepTheLastOne) {
  // A key repeated in model.vocab keeps its last id, as JSON objects do (the first id then names no token); a pair
  // repeated in model.merges keeps its last rank, as in HF. "vocab"/"merges" members outside "model" are not tables.
  const Tokenizer t = load_text(
      "repeated.json", small_tokenizer_json(R"({"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4, "a": 5})",
                                            R"(["a b", "b c", "a b"])", "[]",
                                            R"(, "decoder": {"vocab": {"zz": 1}, "merges": [7], "model": {}})"));
  EXPECT_EQ(t.vocab_size(), 6);
  EXPECT_EQ(t.token_to_id("a"), 5);
  EXPECT_THROW(t.id_to_token(0), Error);
  EXPECT_EQ(t.decode({0, 5}), "a");
  EXPECT_EQ(t.encode("abc"), (std::vector<int32_t>{5, 4}));  // "b c" (rank 1) before "a b" (rank 2)
  EXPECT_FALSE(t.token_to_id("zz").has_value());
}

TEST(Tokenizer, TokensOutsideTheByteAlphabetKeepTheirText) {
  // "中" is not a byte-level string (its bytes E4 B8 AD would be written "ä¸Ń"), so it decodes to its own UTF-8 and
  // stays a token apart from the byte-level "ä¸Ń", which decodes to the same bytes.
  const std::string vocab = "{\"a\": 0, \"\xE4\xB8\xAD\": 1, \"\xC3\xA4\xC2\xB8\xC5\x83\": 2}";
  const Tokenizer t = load_text("non_byte_level.json", small_tokenizer_json(vocab, "[]"));
  EXPECT_EQ(t.token_to_id("\xE4\xB8\xAD"), 1);
  EXPECT_EQ(t.token_to_id("\xC3\xA4\xC2\xB8\xC5\x83"), 2);
  EXPECT_EQ(t.id_to_token(1), "\xE4\xB8\xAD");
  EXPECT_EQ(t.id_to_token(2), "\xC3\xA4\xC2\xB8\xC5\x83");
  EXPECT_EQ(t.token_bytes(1), "\xE4\xB8\xAD");
  EXPECT_EQ(t.token_bytes(2), "\xE4\xB8\xAD");
  EXPECT_EQ(t.decode({1, 2, 0}), "\xE4\xB8\xAD\xE4\xB8\xAD" "a");
}

TEST(Tokenizer, MinimalTokenizerWithPairMerges) {
  // Merges in ["a", "b"] pair form and an added token; bytes missing from the vocab are dropped, as in HF.
  nlohmann::json vocab = nlohmann::json::object();
  vocab["a"] = 0;
  vocab["b"] = 1;
  vocab["ab"] = 2;
  vocab["\xC4\xA0"] = 3;  // "Ġ" = space
  vocab["\xC4\xA0" "ab"] = 4;
  nlohmann::json root = {
      {"added_tokens", {{{"id", 5}, {"content", "<x>"}, {"special", true}}}},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", " ?\\p{L}+|\\s+"}}}, {"behavior", "Isolated"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab},
                 {"merges", nlohmann::json::array({nlohmann::json::array({"a", "b"}),
                                                   nlohmann::json::array({"\xC4\xA0", "ab"})})}}}};
  const std::string path = temp_path("minimal.json");
  std::ofstream(path) << root.dump();
  const Tokenizer t = Tokenizer::from_file(path);
  std::remove(path.c_str());
  EXPECT_EQ(t.vocab_size(), 6);
  EXPECT_EQ(t.encode("ab ab<x>a"), (std::vector<int32_t>{2, 4, 5, 0}));
  EXPECT_EQ(t.decode({2, 4, 5, 0}), "ab ab<x>a");
  EXPECT_EQ(t.decode({2, 4, 5, 0}, true), "ab aba");
  EXPECT_TRUE(t.is_special(5));
}

}  // namespace
}  // namespace qwen3vl
