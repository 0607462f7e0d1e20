// Token-level access to a checkpoint's tokenizer for frontends (`qwen3vl tokenize`, the server's /tokenize and
// /detokenize, the Python binding): text to ids the way llama.cpp's llama_tokenize / llama-server's /tokenize do it
// (parse_special), ids to their pieces and back to text, and the prompt ids of a chat exactly as the chat endpoint
// builds them (template, image and video placeholders expanded, encoded), with its visual-token count.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/loaded_model.h"
#include "engine/video_prompt.h"
#include "vision/image_processor.h"
#include "vision/video_processor.h"

namespace qwen3vl {

struct TokenizeOptions {
  // The text of a special token ("<|im_start|>") in the input becomes that token, as llama.cpp's parse_special and
  // transformers' default. false: it is tokenized as plain text (transformers' split_special_tokens=True); the
  // non-special added tokens (<think>, <tool_call>) still match, as in both of those.
  bool parse_special = true;
};

// The ids of `text` (no BOS/EOS: the Qwen tokenizers add none, whatever add_special_tokens says). Throws Error
// when the checkpoint was loaded without its tokenizer.
std::vector<int32_t> tokenize(const LoadedModel& model, std::string_view text, const TokenizeOptions& options = {});

struct TokenPiece {
  int32_t id = 0;
  std::string bytes;  // what the token stands for (a special token: its text); a character may span tokens
  bool utf8 = true;   // bytes are valid UTF-8 on their own (llama-server then sends a string, else a byte list)
};

// Each id with its piece. Throws Error naming the first id that is no token ("tokens[3]: ...").
std::vector<TokenPiece> token_pieces(const LoadedModel& model, const std::vector<int64_t>& ids);

// The text of `ids`, special tokens included unless skip_special_tokens (transformers' decode; invalid UTF-8 across
// the pieces becomes U+FFFD). Throws Error naming the first id that is no token, as "tokens[INDEX]: ...".
std::string detokenize(const LoadedModel& model, const std::vector<int64_t>& ids, bool skip_special_tokens = false);

struct ChatTokens {
  std::vector<int32_t> ids;
  int64_t image_tokens = 0;  // <|image_pad|> ids after expansion
  int64_t video_tokens = 0;  // <|video_pad|> ids after expansion
  int64_t visual_tokens() const { return image_tokens + video_tokens; }
};

// The prompt of `messages` with the generation prompt: the chat template rendered, each image and video placeholder
// expanded (in order, by `images` / `videos`, of which only the grids and video timestamps are read), encoded.
// Throws Error when the placeholders and the media given differ in number.
ChatTokens tokenize_chat(const LoadedModel& model, const std::vector<ChatMessage>& messages,
                         const std::vector<ProcessedImage>& images, const std::vector<ProcessedVideo>& videos = {},
                         VideoPlaceholderStyle style = VideoPlaceholderStyle::Transformers5);

}  // namespace qwen3vl
