// POST /tokenize and POST /detokenize bodies, in llama-server's shapes:
//   /tokenize   {"content": TEXT, "add_special": false, "parse_special": true, "with_pieces": false}
//   /detokenize {"tokens": [ID, ...]}
// and our extension of /tokenize: {"messages": [...]} (with the chat endpoint's media and budget fields) for the
// prompt the chat endpoint would build. Nothing here touches the model; every problem is an ApiError 400 naming the
// field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chat_request.h"

namespace qwen3vl {
namespace server {

struct TokenizeRequest {
  std::string content;              // the text, when `chat` is empty
  std::optional<ChatRequest> chat;  // "messages" given: the chat prompt is tokenized instead
  bool parse_special = true;        // llama-server's default; content only (a chat prompt's are always parsed)
  bool with_pieces = false;
  // llama-server's add_special (BOS/EOS) is type-checked and has no effect: Qwen tokenizers add no special tokens.
};

TokenizeRequest parse_tokenize_request(const std::string& body);

// The ids of a /detokenize body; each must be an integer (whether it names a token is the engine's check).
std::vector<int64_t> parse_detokenize_request(const std::string& body);

}  // namespace server
}  // namespace qwen3vl
