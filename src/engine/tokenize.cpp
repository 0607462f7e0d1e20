#include "engine/tokenize.h"

#include <algorithm>

#include "core/error.h"
#include "engine/prompt.h"
#include "tokenizer/unicode_text.h"

namespace qwen3vl {
namespace {

const Tokenizer& tokenizer_of(const LoadedModel& model) {
  if (!model.tokenizer) throw_error(model.dir, "/tokenizer.json: missing (needed to tokenize)");
  return *model.tokenizer;
}

// Every id must name a token: the embedding's padding rows past the tokenizer's last id have no text.
void check_ids(const Tokenizer& tokenizer, const std::vector<int64_t>& ids) {
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    if (id < 0 || id >= tokenizer.vocab_size() || tokenizer.token_bytes(static_cast<int32_t>(id)).empty())
      throw_error("tokens[", i, "]: ", id, " is not a token id of this tokenizer (0 to ", tokenizer.vocab_size() - 1,
                  ")");
  }
}

}  // namespace

std::vector<int32_t> tokenize(const LoadedModel& model, std::string_view text, const TokenizeOptions& options) {
  return tokenizer_of(model).encode(text, /*split_special_tokens=*/!options.parse_special);
}

std::vector<TokenPiece> token_pieces(const LoadedModel& model, const std::vector<int64_t>& ids) {
  const Tokenizer& tokenizer = tokenizer_of(model);
  check_ids(tokenizer, ids);
  std::vector<TokenPiece> pieces;
  pieces.reserve(ids.size());
  for (const int64_t id : ids) {
    TokenPiece piece;
    piece.id = static_cast<int32_t>(id);
    piece.bytes = std::string(tokenizer.token_bytes(piece.id));
    piece.utf8 = unicode::is_valid_utf8(piece.bytes);
    pieces.push_back(std::move(piece));
  }
  return pieces;
}

std::string detokenize(const LoadedModel& model, const std::vector<int64_t>& ids, bool skip_special_tokens) {
  const Tokenizer& tokenizer = tokenizer_of(model);
  check_ids(tokenizer, ids);
  return tokenizer.decode(std::vector<int32_t>(ids.begin(), ids.end()), skip_special_tokens);
}

ChatTokens tokenize_chat(const LoadedModel& model, const std::vector<ChatMessage>& messages,
                         const std::vector<ProcessedImage>& images, const std::vector<ProcessedVideo>& videos,
                         VideoPlaceholderStyle style) {
  tokenizer_of(model);  // throws the clear error for a checkpoint loaded without its tokenizer
  // load_model checks that the image and video processors use the tower's merge and temporal patch sizes.
  const VisionConfig& vision = model.config.vision_config;
  const std::string text = expand_video_placeholders(
      expand_image_placeholders(render_chat(model, messages), images, vision.spatial_merge_size), videos,
      vision.spatial_merge_size, vision.temporal_patch_size, style);
  ChatTokens tokens;
  tokens.ids = encode_text(model, text);
  tokens.image_tokens = std::count(tokens.ids.begin(), tokens.ids.end(), model.config.image_token_id);
  tokens.video_tokens = std::count(tokens.ids.begin(), tokens.ids.end(), model.config.video_token_id);
  return tokens;
}

}  // namespace qwen3vl
