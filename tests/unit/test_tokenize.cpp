// The engine's tokenize API (engine/tokenize.h) on the tiny checkpoint with the real Qwen3 tokenizer: ids against
// the HF goldens with and without parse_special, pieces, detokenize and its refusal of ids that are no token, and
// tokenize_chat's prompt and visual-token counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "core/error.h"
#include "engine/prompt.h"
#include "engine/tokenize.h"
#include "test_util.h"
#include "tokenizer/unicode_text.h"
#include "tokenizer_goldens.h"

namespace qwen3vl {
namespace {

const LoadedModel& model() {
  static const std::unique_ptr<LoadedModel> loaded = [] {
    LoadOptions options;
    options.threads = 1;
    return load_model(testing::model_fixture("tiny-realtok-bf16"), options);
  }();
  return *loaded;
}

std::vector<int64_t> wide(const std::vector<int32_t>& ids) { return {ids.begin(), ids.end()}; }

std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(TokenizeApi, ParseSpecialChoosesBetweenTheHfGoldens) {
  const auto& goldens = testing::tokenizer_goldens();
  const auto& split = testing::split_special_goldens();
  ASSERT_FALSE(split.empty());
  TokenizeOptions plain;
  plain.parse_special = false;
  for (const auto& [index, split_ids] : split) {
    const testing::TokenizerGolden& g = goldens.at(index);
    EXPECT_EQ(tokenize(model(), g.input), g.ids) << "golden " << index;
    EXPECT_EQ(tokenize(model(), g.input, plain), split_ids) << "golden " << index;
  }
  // Without special-token text, both ways give the same ids.
  EXPECT_EQ(tokenize(model(), goldens.front().input, plain), goldens.front().ids);
}

TEST(TokenizeApi, PiecesConcatenateToTheDecodedText) {
  int split_characters = 0;
  for (const testing::TokenizerGolden& g : testing::tokenizer_goldens()) {
    const std::vector<TokenPiece> pieces = token_pieces(model(), wide(g.ids));
    ASSERT_EQ(pieces.size(), g.ids.size());
    std::string bytes;
    for (size_t i = 0; i < pieces.size(); ++i) {
      EXPECT_EQ(pieces[i].id, g.ids[i]);
      EXPECT_EQ(pieces[i].utf8, unicode::is_valid_utf8(pieces[i].bytes));
      split_characters += !pieces[i].utf8;
      bytes += pieces[i].bytes;
    }
    EXPECT_EQ(unicode::replace_invalid_utf8(bytes), g.decoded);
  }
  EXPECT_GT(split_characters, 0) << "the corpus has characters spread over several tokens";
  const std::vector<TokenPiece> parrot = token_pieces(model(), wide(tokenize(model(), "\xF0\x9F\xA6\x9C")));
  ASSERT_EQ(parrot.size(), 2u);  // U+1F99C: three bytes in one token, the last in another
  EXPECT_FALSE(parrot[0].utf8);
  EXPECT_EQ(parrot[0].bytes + parrot[1].bytes, "\xF0\x9F\xA6\x9C");
}

TEST(TokenizeApi, DetokenizeMatchesHfAndRoundTrips) {
  for (const testing::TokenizerGolden& g : testing::tokenizer_goldens()) {
    EXPECT_EQ(detokenize(model(), wide(g.ids)), g.decoded);
    EXPECT_EQ(detokenize(model(), wide(g.ids), /*skip_special_tokens=*/true), g.decoded_skip);
    EXPECT_EQ(detokenize(model(), wide(tokenize(model(), g.decoded))), g.decoded);
  }
}

TEST(TokenizeApi, IdsThatAreNoTokenAreRefusedByIndex) {
  const int64_t size = model().tokenizer->vocab_size();
  EXPECT_EQ(error_of([&] { detokenize(model(), {9707, 220, size}); }),
            "tokens[2]: " + std::to_string(size) + " is not a token id of this tokenizer (0 to " +
                std::to_string(size - 1) + ")");
  EXPECT_NE(error_of([&] { detokenize(model(), {-1}); }).find("tokens[0]: -1 "), std::string::npos);
  EXPECT_NE(error_of([&] { token_pieces(model(), {0, int64_t{1} << 40}); }).find("tokens[1]: "), std::string::npos);
  EXPECT_EQ(detokenize(model(), {size - 1}), "</think>");
  EXPECT_EQ(detokenize(model(), {}), "");
}

TEST(TokenizeApi, ACheckpointWithoutTokenizerSaysSo) {
  LoadOptions options;
  options.require_tokenizer = false;
  options.threads = 1;
  const auto bare = load_model(testing::model_fixture("tiny-fp32-tied"), options);
  EXPECT_NE(error_of([&] { tokenize(*bare, "hi"); }).find("tokenizer.json"), std::string::npos);
  EXPECT_NE(error_of([&] { detokenize(*bare, {1}); }).find("tokenizer.json"), std::string::npos);
  EXPECT_NE(error_of([&] { tokenize_chat(*bare, single_turn("", "hi"), {}); }).find("tokenizer.json"),
            std::string::npos);
}

TEST(TokenizeApi, ChatPromptExpandsImagesAndCountsTheirTokens) {
  const std::vector<ChatMessage> text_only = single_turn("Be brief.", "Hello");
  const ChatTokens plain = tokenize_chat(model(), text_only, {});
  EXPECT_EQ(plain.ids, tokenize(model(), render_chat(model(), text_only)));
  EXPECT_EQ(plain.visual_tokens(), 0);

  ProcessedImage first, second;  // grids only: 2x3 and 1x1 merged tokens
  first.grid = {1, 4, 6};
  second.grid = {1, 2, 2};
  const ChatTokens two = tokenize_chat(model(), single_turn("", "Compare", 2), {first, second});
  EXPECT_EQ(two.image_tokens, 7);
  EXPECT_EQ(two.video_tokens, 0);
  EXPECT_EQ(std::count(two.ids.begin(), two.ids.end(), model().config.image_token_id), 7);
  const ChatTokens one = tokenize_chat(model(), single_turn("", "Compare", 1), {second});
  EXPECT_EQ(two.ids.size(), one.ids.size() + 2 + 6);  // <|vision_start|>, 6 pads, <|vision_end|>
  EXPECT_THROW(tokenize_chat(model(), single_turn("", "Compare", 2), {first}), Error);
}

}  // namespace
}  // namespace qwen3vl
